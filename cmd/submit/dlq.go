package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/switchyard/switchyard/internal/ops"
	"github.com/switchyard/switchyard/pkg/bus"
)

// cmdDLQ lists, shows, replays and purges dead letters (internal/ops, as
// the console does).
func cmdDLQ(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := newCommand("submit dlq", "submit dlq list [filters] | show <seq> | replay <seq>... | replay --all [filters] | purge <seq>... | purge --all [filters]", `
Reads and acts on the dead-letter stream LLM_DLQ: jobs that could not be
decoded, or were delivered SWITCHYARD_MAX_DELIVER times without an answer.
"list" shows them newest first with their reason, and the count per reason
(code); "show" one with its request (secrets redacted). "replay" publishes
dead letters again on the subject they came from: the job runs once more
under its id and its new result becomes the job's; the dead letter is kept
and marked replayed (by --by). "purge" deletes dead letters for good.

replay --all and purge act on every dead letter the filters select and ask
for confirmation first (on a terminal; elsewhere --yes is required).`, stderr)
	group := cmd.fs.StringP("group", "g", "", "only this group's dead letters")
	tenant := cmd.fs.StringP("tenant", "t", "", `only this tenant's ("" with --tenant= for the anonymous tenant)`)
	code := cmd.fs.String("code", "", "only this reason (error code, e.g. internal, invalid_request)")
	job := cmd.fs.String("job", "", "only this job id's")
	replayed := cmd.fs.String("replayed", "", "only replayed (yes) or not replayed (no) ones")
	limit := cmd.fs.IntP("limit", "n", 50, "list at most this many")
	all := cmd.fs.Bool("all", false, "replay or purge every dead letter the filters select")
	yes := cmd.fs.BoolP("yes", "y", false, "do not ask for confirmation")
	by := cmd.fs.String("by", defaultWho(), "who replays or purges, as the replay mark and the log say")
	jsonOut := cmd.fs.Bool("json", false, "print JSON")
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return cmd.usageErr("missing the action: list, show, replay or purge")
	}
	action, rest := pos[0], pos[1:]
	f := ops.Filter{Group: *group, Code: *code, JobID: *job, Replayed: *replayed, Limit: *limit}
	if cmd.fs.Changed("tenant") {
		f.Tenant = tenant
	}
	if f.Replayed != "" && f.Replayed != "yes" && f.Replayed != "no" {
		return cmd.usageErr("--replayed %s: want yes or no", f.Replayed)
	}
	seqs, err := parseSeqs(rest)
	if err != nil {
		return cmd.usageErr("%v", err)
	}
	if err := checkDLQAction(cmd, action, rest, seqs, *all); err != nil {
		return err
	}
	nc, env, js, err := connectJS()
	if err != nil {
		return err
	}
	defer nc.Close()
	r := &dlqRun{
		dlq: ops.NewDeadLetters(js, bus.Subjects{Prefix: env.Prefix}), f: f, all: *all, yes: *yes, jsonOut: *jsonOut, by: *by,
		stdin: stdin, stdout: stdout, stderr: stderr,
	}
	switch action {
	case "list":
		return r.list(ctx)
	case "show":
		return r.show(ctx, seqs[0])
	}
	return r.change(ctx, action, seqs)
}

// checkDLQAction checks an action's arguments before anything connects.
func checkDLQAction(cmd *command, action string, rest []string, seqs []uint64, all bool) error {
	switch action {
	case "list":
		if len(rest) > 0 {
			return cmd.usageErr("submit dlq list takes filters, not arguments (got %q)", strings.Join(rest, " "))
		}
	case "show":
		if len(seqs) != 1 {
			return cmd.usageErr("submit dlq show takes one sequence number (submit dlq list shows them)")
		}
	case "replay", "purge":
		switch {
		case all && len(seqs) > 0:
			return cmd.usageErr("give sequence numbers or --all, not both")
		case !all && len(seqs) == 0:
			return cmd.usageErr("submit dlq %s needs sequence numbers or --all", action)
		}
	default:
		return cmd.usageErr("%q is not an action: list, show, replay or purge", action)
	}
	return nil
}

// dlqRun is one `submit dlq` action on the dead letters.
type dlqRun struct {
	dlq               *ops.DeadLetters
	f                 ops.Filter
	all, yes, jsonOut bool
	by                string
	stdin             io.Reader
	stdout, stderr    io.Writer
}

func (r *dlqRun) list(ctx context.Context) error {
	l, err := r.dlq.List(ctx, r.f)
	if err != nil {
		return err
	}
	if r.jsonOut {
		return writeJSONOut(r.stdout, l)
	}
	printDLQ(r.stdout, l)
	return nil
}

func (r *dlqRun) show(ctx context.Context, seq uint64) error {
	d, err := r.dlq.Get(ctx, seq)
	if err != nil {
		return err
	}
	req := d.Request()
	if r.jsonOut {
		return writeJSONOut(r.stdout, map[string]any{"dead_letter": d, "request": req})
	}
	printDeadLetter(r.stdout, d, req)
	return nil
}

// change replays or purges the dead letters seqs, or with --all those the
// filters select, after asking where it must.
func (r *dlqRun) change(ctx context.Context, action string, seqs []uint64) error {
	if r.all {
		f := r.f
		f.Limit = 0
		var err error
		if seqs, err = r.dlq.Select(ctx, f); err != nil {
			return err
		}
		if len(seqs) == 0 {
			fmt.Fprintln(r.stderr, "no dead letter matches")
			return nil
		}
	}
	if r.all || action == "purge" {
		if err := confirm(r.stdin, r.stderr, r.yes, fmt.Sprintf("%s %d dead letter(s)%s?", action, len(seqs), describeFilter(r.f))); err != nil {
			return err
		}
	}
	if action == "purge" {
		n, err := r.dlq.Purge(ctx, seqs)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.stderr, "purged %d dead letter(s) (by %s)\n", n, r.by)
		return nil
	}
	return r.replay(ctx, seqs)
}

func (r *dlqRun) replay(ctx context.Context, seqs []uint64) error {
	out, err := r.dlq.Replay(ctx, seqs, r.by)
	if r.jsonOut {
		if jerr := writeJSONOut(r.stdout, out); jerr != nil {
			return jerr
		}
	} else {
		for _, o := range out {
			if o.Skipped != "" {
				fmt.Fprintf(r.stdout, "%d\t%s\tskipped: %s\n", o.Seq, o.JobID, o.Skipped)
			} else {
				fmt.Fprintf(r.stdout, "%d\t%s\treplayed as %s\n", o.Seq, o.JobID, o.MsgID)
			}
		}
	}
	if err != nil {
		return err
	}
	n := 0
	for _, o := range out {
		if o.Skipped == "" {
			n++
		}
	}
	fmt.Fprintf(r.stderr, "replayed %d of %d dead letter(s) (by %s); submit jobs show <id> follows them\n", n, len(out), r.by)
	return nil
}

func parseSeqs(args []string) ([]uint64, error) {
	var out []uint64
	for _, a := range args {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q is not a dead letter's sequence number (submit dlq list shows them)", a)
		}
		out = append(out, n)
	}
	return out, nil
}

func describeFilter(f ops.Filter) string {
	var parts []string
	if f.Group != "" {
		parts = append(parts, "group "+f.Group)
	}
	if f.Tenant != nil {
		parts = append(parts, "tenant "+tenantLabel(*f.Tenant))
	}
	if f.Code != "" {
		parts = append(parts, "reason "+f.Code)
	}
	if f.JobID != "" {
		parts = append(parts, "job "+f.JobID)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// confirm asks a yes/no question on a terminal; without one, --yes is the
// answer.
func confirm(stdin io.Reader, stderr io.Writer, yes bool, question string) error {
	if yes {
		return nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &exitError{2, fmt.Errorf("%s: confirm with --yes (no terminal to ask on)", question)}
	}
	fmt.Fprintf(stderr, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return &exitError{1, fmt.Errorf("not confirmed: nothing done")}
	}
	return nil
}

// defaultWho names the operator for replay marks and logs.
func defaultWho() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "cli:" + name + "@" + host
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func printDLQ(w io.Writer, l *ops.Listing) {
	fmt.Fprintf(w, "%d dead letter(s) match of %d", l.Matched, l.Total)
	if l.Replayed > 0 {
		fmt.Fprintf(w, ", %d replayed", l.Replayed)
	}
	if l.Truncated {
		fmt.Fprintf(w, " (counted the first %d only)", ops.MaxScan)
	}
	fmt.Fprintln(w)
	if l.Matched == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nREASON\tCOUNT")
	for _, c := range l.Reasons() {
		fmt.Fprintf(tw, "%s\t%d\n", c, l.ByCode[c])
	}
	fmt.Fprintln(tw, "\nSEQ\tTIME\tGROUP\tTENANT\tJOB\tREASON\tDELIVERIES\tREPLAYED\tDETAIL")
	for _, d := range l.Entries {
		rep := "-"
		if d.Replayed != nil {
			rep = d.Replayed.At.Local().Format(time.DateTime) + " by " + d.Replayed.By
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Seq, d.Time.Local().Format(time.DateTime), d.Group, tenantLabel(d.Tenant),
			d.JobID, d.Code, d.Deliveries, rep, oneLine(d.Reason, 80))
	}
	_ = tw.Flush()
}

func printDeadLetter(w io.Writer, d *ops.DeadLetter, req *ops.Request) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"seq", strconv.FormatUint(d.Seq, 10)}, {"time", d.Time.Local().Format(time.RFC3339)}, {"group", d.Group},
		{"tenant", tenantLabel(d.Tenant)}, {"job", d.JobID}, {"reason", d.Code + ": " + d.Reason},
		{"subject", d.Subject}, {"deliveries", strconv.Itoa(d.Deliveries)}, {"size", humanBytes(uint64(d.Size))},
	}
	if d.Replayed != nil {
		rows = append(rows, [2]string{"replayed", d.Replayed.At.Local().Format(time.RFC3339) + " by " + d.Replayed.By + " as " + d.Replayed.MsgID})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	_ = tw.Flush()
	printRequest(w, req)
}

func printRequest(w io.Writer, req *ops.Request) {
	if req == nil {
		return
	}
	fmt.Fprintf(w, "\nrequest (%s, %s, from %s seq %d; secrets redacted):\n", req.Encoding, humanBytes(uint64(req.Size)), req.Stream, req.Seq)
	for _, h := range req.Headers {
		fmt.Fprintf(w, "  %s: %s\n", h.Name, h.Value)
	}
	switch {
	case req.Body != nil:
		b, _ := json.MarshalIndent(req.Body, "  ", "  ") // wire type
		fmt.Fprintf(w, "  %s\n", b)
	case req.Object != "":
		fmt.Fprintf(w, "  (the body is the object %s in the tenant's object bucket)\n", req.Object)
	default:
		fmt.Fprintf(w, "  (cannot be decoded: %s)\n  %s\n", req.DecodeError, req.Raw)
	}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
