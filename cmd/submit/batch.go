package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/switchyard/switchyard/pkg/bus"
)

// maxReportedInvalid bounds the invalid lines listed on stderr; all of them
// are in the output file anyway.
const maxReportedInvalid = 20

// batchFlags are the flags of `submit batch`.
type batchFlags struct {
	outPath, group, format, batchID, encoding string
	priority                                  string
	conc                                      int
	retryFailed                               bool
	timeout                                   time.Duration
}

func (f *batchFlags) define(fs *pflag.FlagSet) {
	fs.StringVarP(&f.outPath, "output", "o", "", "output `file` (- for stdout); required")
	fs.StringVarP(&f.group, "group", "g", "", "model `group` of every line (default: each line's model)")
	fs.IntVar(&f.conc, "concurrency", 64, "jobs in flight at most")
	fs.StringVar(&f.priority, "priority", string(bus.PriorityBatch), "class of the lines' jobs whose body names none: interactive, default or batch")
	fs.StringVar(&f.format, "format", "", "input/output format: openai or anthropic (default: detected from the first line)")
	fs.StringVar(&f.batchID, "batch-id", "", "batch `id` that job ids derive from (default: a hash of the input's path and content, --group and --format)")
	fs.StringVar(&f.encoding, "encoding", "msgpack", "wire encoding: msgpack or json")
	fs.BoolVar(&f.retryFailed, "retry-failed", false, "run again the lines whose last run failed, whatever the error")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "deadline of each line's job (unless its body sets timeout_ms), counted from its publication"+graceHelp("fails the line (timeout, run again by a re-run)"))
}

// check validates the flags and the positional arguments (the input file).
func (f *batchFlags) check(cmd *command, pos []string) error {
	switch {
	case len(pos) == 0 && f.outPath == "":
		return cmd.usageErr("missing the input file and -o OUT.jsonl: submit batch IN.jsonl -o OUT.jsonl")
	case len(pos) == 0:
		return cmd.usageErr("missing the input file: submit batch IN.jsonl -o %s", f.outPath)
	case len(pos) > 1:
		return cmd.usageErr("one input file at a time, got %d: %s", len(pos), strings.Join(pos, ", "))
	case f.outPath == "":
		return cmd.usageErr("missing -o OUT.jsonl, the output file (- for stdout): submit batch %s -o out.jsonl", pos[0])
	}
	if !bus.ValidPriority(bus.Priority(f.priority)) {
		return cmd.usageErr("--priority %s: want interactive, default or batch", f.priority)
	}
	switch bus.BatchFormat(f.format) {
	case "", bus.BatchOpenAI, bus.BatchAnthropic:
	default:
		return cmd.usageErr("--format %q: want openai or anthropic", f.format)
	}
	if f.group != "" && !bus.ValidGroup(f.group) {
		return cmd.usageErr("--group %q: not a group name (one token of [a-z0-9_-])", f.group)
	}
	if f.conc < 1 {
		return cmd.usageErr("--concurrency %d: want at least 1", f.conc)
	}
	if f.batchID != "" && !bus.ValidBatchID(f.batchID) {
		return cmd.usageErr("--batch-id %q: at most 80 of [A-Za-z0-9_=/-]", f.batchID)
	}
	return checkTimeout(cmd, f.timeout)
}

func cmdBatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f batchFlags
	cmd := newCommand("submit batch", "submit batch IN.jsonl -o OUT.jsonl [flags]", `
Runs every line of IN.jsonl as a job and writes one result line per input line
to OUT.jsonl, in completion order (each line carries its custom_id).
Input: OpenAI Batch API lines {custom_id, method, url, body} (the body's model
names the group unless --group is given), or Anthropic Message Batches lines
{custom_id, params}; the output is in the same vendor's results format.
Every group the lines name must be served by a worker before anything is sent.
Re-running the same command (same file, --group and --format, or --batch-id)
does not run finished lines again: a line that ended ok, or failed because of
its request (invalid_request, too_large, context_window_exceeded,
content_policy), is read back from LLM_RESULTS (kept 24h); a line that failed
otherwise (unknown_group, rate_limited, provider_unavailable, timeout,
internal, ...) runs again, and --retry-failed runs every failed line again.`, stderr)
	f.define(cmd.fs)
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	if err := f.check(cmd, pos); err != nil {
		return err
	}
	enc, err := parseEncoding(f.encoding)
	if err != nil {
		return cmd.usageErr("%v", err)
	}
	in, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	if f.batchID == "" {
		abs, err := filepath.Abs(pos[0])
		if err != nil {
			return err
		}
		// What changes the outcome is part of the id, so that a re-run
		// with another --group or --format never reads back this one's
		// results (each line's job id also includes its group).
		f.batchID = bus.BatchIDFor(abs+"\x00group="+f.group+"\x00format="+f.format, in)
	}
	return runBatch(ctx, &f, enc, in, stdout, stderr)
}

// runBatch runs the lines of in and writes their results.
func runBatch(ctx context.Context, f *batchFlags, enc bus.Encoding, in []byte, stdout, stderr io.Writer) error {
	var out io.Writer = stdout
	closeOut := func() error { return nil }
	if f.outPath != "-" {
		file, err := os.Create(f.outPath)
		if err != nil {
			return err
		}
		defer file.Close() //nolint:errcheck // the error that matters is checked by closeOut
		out, closeOut = file, file.Close
	}
	nc, c, err := dial(enc)
	if err != nil {
		return err
	}
	defer nc.Close()

	// Like a single prompt, a batch for a group no worker serves fails at
	// once instead of waiting for the fleet to answer every line.
	for _, g := range batchGroups(in, bus.BatchFormat(f.format), f.group) {
		if err := checkServed(ctx, c, g); err != nil {
			return err
		}
	}

	total := countLines(in)
	sink := &batchSink{
		w: bufio.NewWriterSize(out, 64<<10), path: f.outPath, bar: newBatchBar(total, stderr), stderr: stderr,
		reader: &bus.BatchReader{Format: bus.BatchFormat(f.format), Group: f.group},
	}
	start := time.Now()
	cfg := bus.BatchConfig{ID: f.batchID, Concurrency: f.conc, RetryFailed: f.retryFailed, Timeout: f.timeout, Grace: clientGrace, Priority: bus.Priority(f.priority)}
	st, runErr := c.RunBatch(ctx, cfg, sink.reader.Items(bytes.NewReader(in)), sink.write)
	sink.bar.finish()
	flushErr := errors.Join(sink.w.Flush(), closeOut())
	if sink.invalid > maxReportedInvalid {
		fmt.Fprintf(stderr, "... and %d more invalid lines (see the output)\n", sink.invalid-maxReportedInvalid)
	}
	el := time.Since(start)
	fmt.Fprintf(stderr, "%d of %d lines: %d ok, %d failed (%d invalid), %d read back from earlier runs, %d run again after failing · %s · %.0f lines/s · batch %s · format %s\n",
		st.Lines, total, st.OK, st.Failed, st.Invalid, st.Stored, st.Rerun, el.Round(time.Millisecond), float64(st.Lines)/max(el.Seconds(), 1e-3), f.batchID, sink.reader.Format)
	switch {
	case errors.Is(runErr, context.Canceled):
		return &exitError{130, fmt.Errorf("interrupted; published jobs go on: run the same command again to collect them")}
	case runErr != nil:
		return runErr
	case flushErr != nil:
		return fmt.Errorf("write %s: %w", f.outPath, flushErr)
	case st.Failed > 0:
		return &exitError{1, fmt.Errorf("%d of %d lines failed", st.Failed, st.Lines)}
	}
	return nil
}

// batchSink writes a batch's result lines as they come, counts them on the
// progress bar and reports the first invalid lines.
type batchSink struct {
	w                   *bufio.Writer
	path                string
	reader              *bus.BatchReader
	bar                 *batchBar
	stderr              io.Writer
	ok, failed, invalid int
}

func (s *batchSink) write(o *bus.BatchOutcome) error {
	line, err := bus.MarshalBatchLine(s.reader.Format, o)
	if err != nil {
		return err
	}
	_, _ = s.w.Write(line) // a failed write is sticky: WriteByte reports it
	if err := s.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	if o.OK() {
		s.ok++
	} else {
		s.failed++
	}
	if o.Item.Err != nil {
		s.invalid++
		if s.invalid <= maxReportedInvalid {
			s.bar.clear()
			msg := o.Item.Err.Error()
			if be, ok := errors.AsType[*bus.Error](o.Item.Err); ok {
				msg = be.Message
			}
			fmt.Fprintf(s.stderr, "invalid: %s\n", msg)
		}
	}
	s.bar.add(s.ok, s.failed)
	return nil
}

func parseEncoding(s string) (bus.Encoding, error) {
	switch s {
	case "msgpack":
		return bus.Msgpack, nil
	case "json":
		return bus.JSON, nil
	}
	return bus.Msgpack, fmt.Errorf("--encoding %q: want msgpack or json", s)
}

// countLines counts the non-blank lines, the batch's items.
func countLines(b []byte) int {
	n := 0
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
		b = rest
	}
	return n
}

// batchGroups returns the groups the valid lines of in go to, in order of
// first use.
func batchGroups(in []byte, format bus.BatchFormat, group string) []string {
	if group != "" {
		return []string{group}
	}
	r := &bus.BatchReader{Format: format}
	var groups []string
	seen := map[string]bool{}
	for it := range r.Items(bytes.NewReader(in)) {
		if it.Err == nil && !seen[it.Group] {
			seen[it.Group] = true
			groups = append(groups, it.Group)
		}
	}
	return groups
}

// batchBar is a progress bar on a terminal and nothing elsewhere.
//
// The bar shows the count and, in its description, the ok and failed
// counts. progressbar renders on Describe and on Add alike, and a throttled
// render is skipped, so updating both at once could leave a frame with the
// new description and the old count. batchBar throttles itself instead: at
// most every 100ms (and at the first and last line) it sets the description
// and adds the lines counted since, both rendered.
type batchBar struct {
	bar     *progressbar.ProgressBar
	total   int
	done    int
	pending int
	last    time.Time
	now     func() time.Time
}

func newBatchBar(total int, w io.Writer) *batchBar {
	fd, isFile := w.(*os.File)
	if !isFile || !term.IsTerminal(int(fd.Fd())) {
		return &batchBar{}
	}
	return newBar(total, w, time.Now)
}

func newBar(total int, w io.Writer, now func() time.Time) *batchBar {
	return &batchBar{total: total, now: now, bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("ok 0 · failed 0"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("lines"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
	)}
}

// add counts one more line, given the ok and failed counts so far.
func (b *batchBar) add(ok, failed int) {
	if b.bar == nil {
		return
	}
	b.done++
	b.pending++
	if t := b.now(); b.last.IsZero() || t.Sub(b.last) >= 100*time.Millisecond || b.done >= b.total {
		b.last = t
		b.bar.Describe(fmt.Sprintf("ok %d · failed %d", ok, failed))
		_ = b.bar.Add(b.pending)
		b.pending = 0
	}
}

func (b *batchBar) clear() {
	if b.bar != nil {
		_ = b.bar.Clear()
	}
}

func (b *batchBar) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
	}
}
