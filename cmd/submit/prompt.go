package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/switchyard/switchyard/internal/spell"
	"github.com/switchyard/switchyard/pkg/bus"
)

type promptFlags struct {
	group       string
	jsonOut     bool
	system      string
	temperature optFloat
	maxTokens   int
	timeout     time.Duration
	id          string
	noStream    bool
	schema      string
	partial     bool
	tools       string
	toolChoice  string
	images      []string
	encoding    string
	tenant      string
	priority    string
}

// promptCommand declares the prompt's flags into f.
func promptCommand(f *promptFlags, w io.Writer) *command {
	cmd := newCommand("submit", `submit [flags] "prompt"`, `
Sends one prompt to a model group and streams the answer: tokens on stdout,
progress and a summary line (deployment, tokens, timings) on stderr. "-" as
the prompt reads it from stdin. Quote a prompt of several words; put -- before
a one-word prompt that looks like a subcommand (submit -- status).
Subcommands: cancel, batch, watch, status, bench (submit help lists them).`, w)
	fs := cmd.fs
	fs.StringVarP(&f.group, "group", "g", "demo", "model `group` to send the job to")
	fs.BoolVar(&f.jsonOut, "json", false, "print the result object as one line of JSON on stdout")
	fs.StringVar(&f.system, "system", "", "system prompt")
	fs.Var(&f.temperature, "temperature", "sampling temperature, 0 to 2 (default: the provider's)")
	fs.IntVar(&f.maxTokens, "max-tokens", 0, "max tokens of the answer (default: the deployment's)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "job deadline, counted from publication"+graceHelp("exits 1 saying what the job waited for"))
	fs.StringVar(&f.id, "id", "", "job `id` (default: a new UUIDv7)")
	fs.BoolVar(&f.noStream, "no-stream", false, "ask for the result only, no token events")
	fs.StringVar(&f.schema, "schema", "", "JSON Schema `file`: ask for a JSON object matching it and print the validated object")
	fs.BoolVar(&f.partial, "partial", false, "with --schema: show the object filling in live")
	fs.StringVar(&f.tools, "tools", "", "JSON `file` with an array of tools (OpenAI format)")
	fs.StringVar(&f.toolChoice, "tool-choice", "", "with --tools: auto, none, required, or a function name")
	fs.StringArrayVar(&f.images, "image", nil, "image `path` or https URL to attach (repeatable)")
	fs.StringVar(&f.encoding, "encoding", "msgpack", "wire encoding: msgpack or json")
	fs.StringVar(&f.priority, "priority", "", "class of the job: interactive, default or batch (default: the group's bare subject, its default class)")
	fs.StringVar(&f.tenant, "tenant", "", "the tenant to act as (default $SWITCHYARD_TENANT): its subjects, which its NATS user must be allowed")
	return cmd
}

func cmdPrompt(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var f promptFlags
	cmd := promptCommand(&f, stderr)
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return cmd.usageErr(`missing the prompt: submit "prompt" (or - to read it from stdin)`)
	case len(pos) > 1:
		return cmd.usageErr("got %d arguments (%s): quote a prompt of several words: submit %q", len(pos), strings.Join(pos, ", "), strings.Join(pos, " "))
	}
	prompt := pos[0]
	if cmd.fs.ArgsLenAtDash() < 0 && !strings.ContainsAny(prompt, " \t\n") {
		if sub, ok := spell.Closest(prompt, subcommands); ok {
			return cmd.usageErr("%q is not a subcommand; did you mean submit %s? To send %q as a prompt: submit -- %s", prompt, sub, prompt, prompt)
		}
	}
	if prompt == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return err
		}
		prompt = strings.TrimRight(string(b), "\n")
	}
	if err := checkTimeout(cmd, f.timeout); err != nil {
		return err
	}
	req, err := f.request(prompt)
	if err != nil {
		return &exitError{2, err}
	}
	enc, err := parseEncoding(f.encoding)
	if err != nil {
		return cmd.usageErr("%v", err)
	}

	nc, c, err := dialAs(enc, cmp.Or(f.tenant, os.Getenv("SWITCHYARD_TENANT")))
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := checkServed(ctx, c, f.group); err != nil {
		return err
	}
	errw := &lockedWriter{w: stderr}
	r := newRenderer(f, stdout, errw)
	jobCtx, cancel := context.WithTimeout(ctx, f.timeout+clientGrace)
	defer cancel()
	stopWatch := watchQueue(jobCtx, c, f.group, errw)
	res, err := c.Submit(jobCtx, f.group, req, bus.OnEvent(r.event))
	stopWatch()
	if res == nil {
		switch {
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return &exitError{130, fmt.Errorf("interrupted; job %s goes on (submit cancel %s stops it)", req.ID, req.ID)}
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return noResult(c, req.ID, f.group, f.timeout)
		}
		return err
	}
	return r.result(res)
}

func (f *promptFlags) request(prompt string) (*bus.Request, error) {
	if f.priority != "" && !bus.ValidPriority(bus.Priority(f.priority)) {
		return nil, fmt.Errorf("--priority %s: want interactive, default or batch", f.priority)
	}
	req := &bus.Request{ID: f.id, Priority: bus.Priority(f.priority)}
	if f.system != "" {
		req.Messages = append(req.Messages, bus.Message{Role: "system", Content: bus.Text(f.system)})
	}
	user := bus.Message{Role: "user", Content: bus.Text(prompt)}
	if len(f.images) > 0 {
		parts := []bus.Part{{Type: "text", Text: prompt}}
		for _, img := range f.images {
			u, err := imageURL(img)
			if err != nil {
				return nil, err
			}
			parts = append(parts, bus.Part{Type: "image_url", ImageURL: &bus.ImageURL{URL: u}})
		}
		user.Content = bus.Content{Parts: parts}
	}
	req.Messages = append(req.Messages, user)
	if f.temperature.set {
		t := f.temperature.v
		req.Temperature = &t
	}
	if f.maxTokens > 0 {
		req.MaxTokens = &f.maxTokens
	}
	if f.timeout > 0 {
		req.TimeoutMS = f.timeout.Milliseconds()
	}
	if f.noStream {
		no := false
		req.Stream = &no
	}
	if f.schema != "" {
		b, err := os.ReadFile(f.schema)
		if err != nil {
			return nil, fmt.Errorf("--schema: %w", err)
		}
		var schema any
		if err := json.Unmarshal(b, &schema); err != nil {
			return nil, fmt.Errorf("--schema %s: not JSON: %w", f.schema, err)
		}
		name := strings.TrimSuffix(filepath.Base(f.schema), filepath.Ext(f.schema))
		req.ResponseFormat = &bus.ResponseFormat{Type: "json_schema", JSONSchema: &bus.JSONSchema{Name: sanitizeName(name), Schema: schema, Strict: true}}
	}
	if f.tools != "" {
		b, err := os.ReadFile(f.tools)
		if err != nil {
			return nil, fmt.Errorf("--tools: %w", err)
		}
		if err := json.Unmarshal(b, &req.Tools); err != nil {
			return nil, fmt.Errorf("--tools %s: want a JSON array of {type, function{name, description, parameters}}: %w", f.tools, err)
		}
	}
	switch f.toolChoice {
	case "":
	case "auto", "none", "required":
		req.ToolChoice = &bus.ToolChoice{Mode: f.toolChoice}
	default:
		req.ToolChoice = &bus.ToolChoice{Mode: "function", Function: f.toolChoice}
	}
	return req, nil
}

func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "schema"
	}
	return b.String()
}

// imageURL passes URLs through and turns a file into a data URL.
func imageURL(s string) (string, error) {
	if strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "data:") {
		return s, nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return "", fmt.Errorf("--image: %w", err)
	}
	mt := mime.TypeByExtension(strings.ToLower(filepath.Ext(s)))
	if !strings.HasPrefix(mt, "image/") {
		return "", fmt.Errorf("--image %s: not a known image type (png, jpeg, gif, webp)", s)
	}
	return "data:" + mt + ";base64," + base64.StdEncoding.EncodeToString(b), nil
}

// renderer prints a job's events and result: the answer (text, tool calls)
// on stdout, progress on stderr. What was streamed is not printed again.
type renderer struct {
	f        promptFlags
	out, err io.Writer
	tty      bool
	printed  bool // text went to stdout
	midLine  bool // stdout's last byte is not a newline
	calls    []streamedCall
	open     int // index into calls of the tool call being streamed, or -1
}

// streamedCall is a tool call as its events showed it.
type streamedCall struct {
	index    int
	id, name string
	args     strings.Builder
}

func newRenderer(f promptFlags, out, errw io.Writer) *renderer {
	tty := false
	fw := errw
	if lw, ok := fw.(*lockedWriter); ok {
		fw = lw.w
	}
	if fd, ok := fw.(*os.File); ok {
		tty = term.IsTerminal(int(fd.Fd()))
	}
	return &renderer{f: f, out: out, err: errw, tty: tty, open: -1}
}

func (r *renderer) write(s string) {
	if s == "" {
		return
	}
	fmt.Fprint(r.out, s)
	r.midLine = !strings.HasSuffix(s, "\n")
}

// endLine ends stdout's line: a tool call being streamed gets its ')'.
func (r *renderer) endLine() {
	if r.open >= 0 {
		r.write(")\n")
		r.open = -1
	}
	if r.midLine {
		r.write("\n")
	}
}

func (r *renderer) event(ev *bus.Event) {
	if r.f.jsonOut {
		return
	}
	switch ev.Type {
	case bus.EventChunk:
		if r.f.schema == "" {
			r.write(ev.Delta)
			r.printed = true
		}
	case bus.EventPartial:
		if r.f.partial {
			b, _ := json.Marshal(ev.Partial)
			if r.tty {
				fmt.Fprintf(r.err, "\r\033[K%s", truncateRunes(string(b), 200))
			} else {
				fmt.Fprintf(r.err, "%s\n", b)
			}
		}
	case bus.EventToolCall:
		r.toolCall(ev.ToolCall)
	case bus.EventRestart:
		r.endLine()
		r.calls, r.printed = nil, false
		fmt.Fprintf(r.err, "[restart: %s — discard the output above]\n", ev.Reason)
	case bus.EventRetry:
		r.endLine()
		fmt.Fprintf(r.err, "[retry: %s]\n", ev.Code)
	case bus.EventFallback:
		r.endLine()
		fmt.Fprintf(r.err, "[fallback to %s: %s]\n", ev.Group, ev.Code)
	}
}

// toolCall streams a call as "tool call <id> <name>(<arguments>)", one line
// per call.
func (r *renderer) toolCall(tc *bus.ToolCallDelta) {
	if tc == nil {
		return
	}
	if r.open < 0 || r.calls[r.open].index != tc.Index {
		r.endLine()
		r.calls = append(r.calls, streamedCall{index: tc.Index, id: tc.ID, name: tc.Name})
		r.open = len(r.calls) - 1
		r.write(fmt.Sprintf("tool call %s %s(", tc.ID, tc.Name))
	}
	r.calls[r.open].args.WriteString(tc.Arguments)
	r.write(tc.Arguments)
}

// streamedAll reports whether the streamed tool calls are the result's.
func (r *renderer) streamedAll(calls []bus.ToolCall) bool {
	if len(calls) != len(r.calls) {
		return false
	}
	for i, c := range calls {
		s := &r.calls[i]
		if c.ID != s.id || c.Function.Name != s.name || c.Function.Arguments != s.args.String() {
			return false
		}
	}
	return true
}

func truncateRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func (r *renderer) result(res *bus.Result) error {
	if r.f.jsonOut {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "%s\n", b)
		if res.Status != bus.StatusOK {
			return &exitError{1, errors.New("")}
		}
		return nil
	}
	if r.f.partial && r.tty {
		fmt.Fprint(r.err, "\r\033[K")
	}
	r.endLine()
	if res.Status == bus.StatusOK {
		if r.f.schema != "" && res.JSON != nil {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			_ = enc.Encode(res.JSON)
			r.write(buf.String())
		} else if !r.printed && res.Text != "" {
			r.write(res.Text + "\n")
		}
		if !r.streamedAll(res.ToolCalls) {
			if len(r.calls) > 0 {
				fmt.Fprintln(r.err, "[the validated tool calls differ from the streamed ones:]")
			}
			for _, tc := range res.ToolCalls {
				r.write(fmt.Sprintf("tool call %s %s(%s)\n", tc.ID, tc.Function.Name, tc.Function.Arguments))
			}
		}
	}
	fmt.Fprintln(r.err, summary(res))
	if res.Status != bus.StatusOK {
		return &exitError{1, errors.New("")}
	}
	return nil
}

func summary(res *bus.Result) string {
	var b strings.Builder
	if res.Status == bus.StatusOK {
		fmt.Fprintf(&b, "✓ ok")
	} else {
		fmt.Fprintf(&b, "✗ %s: %s", res.Error.Code, res.Error.Message)
	}
	fmt.Fprintf(&b, " · job %s", res.ID)
	if res.Deployment != "" {
		fmt.Fprintf(&b, " · %s/%s (%s)", res.Group, res.Deployment, res.Model)
	}
	if u := res.Usage; u != nil {
		fmt.Fprintf(&b, " · tokens %d in, %d out", u.PromptTokens, u.CompletionTokens)
	}
	if res.CostUSD > 0 {
		fmt.Fprintf(&b, " · $%.6f", res.CostUSD)
	}
	t := res.Timings
	fmt.Fprintf(&b, " · queued %dms, ttft %dms, total %dms", t.QueuedMS, t.TTFTMS, t.TotalMS)
	if n := len(res.Attempts); n > 1 {
		fmt.Fprintf(&b, " · %d attempts", n)
	}
	return b.String()
}

// checkServed fails at once for a group no worker serves, naming the groups
// that are, instead of waiting for the fleet's unknown_group answer.
func checkServed(ctx context.Context, c *bus.Client, group string) error {
	ok, err := c.Served(ctx, group)
	if err != nil || ok {
		return nil // can't tell: let the fleet answer
	}
	var known []string
	if st, err := c.Status(ctx); err == nil {
		for _, g := range st.Groups {
			known = append(known, g.Group)
		}
	}
	msg := fmt.Sprintf("unknown_group: no worker serves group %q", group)
	if len(known) > 0 {
		msg += " (served: " + strings.Join(known, ", ") + ")"
	}
	return &exitError{1, errors.New(msg)}
}
