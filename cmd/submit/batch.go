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
	"golang.org/x/term"

	"github.com/switchyard/switchyard/pkg/bus"
)

// maxReportedInvalid bounds the invalid lines listed on stderr; all of them
// are in the output file anyway.
const maxReportedInvalid = 20

func cmdBatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		outPath, group, format, batchID, encoding string
		conc                                      int
	)
	cmd := newCommand("submit batch", "submit batch IN.jsonl -o OUT.jsonl [flags]", `
Runs every line of IN.jsonl as a job and writes one result line per input line
to OUT.jsonl, in completion order (each line carries its custom_id).
Input: OpenAI Batch API lines {custom_id, method, url, body} (the body's model
names the group unless --group is given), or Anthropic Message Batches lines
{custom_id, params}; the output is in the same vendor's results format.
Re-running the same file (or --batch-id) after a crash does not run finished
lines again: their results are read back from LLM_RESULTS (kept 24h).`, stderr)
	fs := cmd.fs
	fs.StringVarP(&outPath, "output", "o", "", "output `file` (- for stdout); required")
	fs.StringVarP(&group, "group", "g", "", "model `group` of every line (default: each line's model)")
	fs.IntVar(&conc, "concurrency", 64, "jobs in flight at most")
	fs.StringVar(&format, "format", "", "input/output format: openai or anthropic (default: detected from the first line)")
	fs.StringVar(&batchID, "batch-id", "", "batch `id` that job ids derive from (default: a hash of the input's path and content)")
	fs.StringVar(&encoding, "encoding", "msgpack", "wire encoding: msgpack or json")
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0 && outPath == "":
		return cmd.usageErr("missing the input file and -o OUT.jsonl: submit batch IN.jsonl -o OUT.jsonl")
	case len(pos) == 0:
		return cmd.usageErr("missing the input file: submit batch IN.jsonl -o %s", outPath)
	case len(pos) > 1:
		return cmd.usageErr("one input file at a time, got %d: %s", len(pos), strings.Join(pos, ", "))
	case outPath == "":
		return cmd.usageErr("missing -o OUT.jsonl, the output file (- for stdout): submit batch %s -o out.jsonl", pos[0])
	}
	switch bus.BatchFormat(format) {
	case "", bus.BatchOpenAI, bus.BatchAnthropic:
	default:
		return cmd.usageErr("--format %q: want openai or anthropic", format)
	}
	if group != "" && !bus.ValidGroup(group) {
		return cmd.usageErr("--group %q: not a group name (one token of [a-z0-9_-])", group)
	}
	if conc < 1 {
		return cmd.usageErr("--concurrency %d: want at least 1", conc)
	}
	enc, err := parseEncoding(encoding)
	if err != nil {
		return cmd.usageErr("%v", err)
	}
	in, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	if batchID == "" {
		abs, err := filepath.Abs(pos[0])
		if err != nil {
			return err
		}
		batchID = bus.BatchIDFor(abs, in)
	} else if !bus.ValidBatchID(batchID) {
		return cmd.usageErr("--batch-id %q: at most 80 of [A-Za-z0-9_=/-]", batchID)
	}

	var out io.Writer = stdout
	closeOut := func() error { return nil }
	if outPath != "-" {
		f, err := os.Create(outPath)
		if err != nil {
			return err
		}
		defer f.Close() //nolint:errcheck // the error that matters is checked by closeOut
		out, closeOut = f, f.Close
	}
	bw := bufio.NewWriterSize(out, 64<<10)

	nc, c, err := dial(enc)
	if err != nil {
		return err
	}
	defer nc.Close()

	total := countLines(in)
	bar := newBatchBar(total, stderr)
	reader := &bus.BatchReader{Format: bus.BatchFormat(format), Group: group}
	var ok, failed, invalid int
	start := time.Now()
	st, runErr := c.RunBatch(ctx, bus.BatchConfig{ID: batchID, Concurrency: conc}, reader.Items(bytes.NewReader(in)), func(o *bus.BatchOutcome) error {
		line, err := bus.MarshalBatchLine(reader.Format, o)
		if err != nil {
			return err
		}
		_, _ = bw.Write(line) // a failed write is sticky: WriteByte reports it
		if err := bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("write %s: %w", outPath, err)
		}
		if o.OK() {
			ok++
		} else {
			failed++
		}
		if o.Item.Err != nil {
			invalid++
			if invalid <= maxReportedInvalid {
				bar.clear()
				msg := o.Item.Err.Error()
				if be, ok := errors.AsType[*bus.Error](o.Item.Err); ok {
					msg = be.Message
				}
				fmt.Fprintf(stderr, "invalid: %s\n", msg)
			}
		}
		bar.add(ok, failed)
		return nil
	})
	bar.finish()
	flushErr := errors.Join(bw.Flush(), closeOut())
	if invalid > maxReportedInvalid {
		fmt.Fprintf(stderr, "... and %d more invalid lines (see the output)\n", invalid-maxReportedInvalid)
	}
	el := time.Since(start)
	fmt.Fprintf(stderr, "%d of %d lines: %d ok, %d failed (%d invalid), %d read back from earlier runs · %s · %.0f lines/s · batch %s · format %s\n",
		st.Lines, total, st.OK, st.Failed, st.Invalid, st.Stored, el.Round(time.Millisecond), float64(st.Lines)/max(el.Seconds(), 1e-3), batchID, reader.Format)
	switch {
	case errors.Is(runErr, context.Canceled):
		return &exitError{130, fmt.Errorf("interrupted; published jobs go on: run the same command again to collect them")}
	case runErr != nil:
		return runErr
	case flushErr != nil:
		return fmt.Errorf("write %s: %w", outPath, flushErr)
	case st.Failed > 0:
		return &exitError{1, fmt.Errorf("%d of %d lines failed", st.Failed, st.Lines)}
	}
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

// batchBar is a progress bar on a terminal and nothing elsewhere.
type batchBar struct {
	bar *progressbar.ProgressBar
}

func newBatchBar(total int, w io.Writer) *batchBar {
	fd, isFile := w.(*os.File)
	if !isFile || !term.IsTerminal(int(fd.Fd())) {
		return &batchBar{}
	}
	return &batchBar{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("ok 0 · failed 0"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("lines"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

func (b *batchBar) add(ok, failed int) {
	if b.bar == nil {
		return
	}
	b.bar.Describe(fmt.Sprintf("ok %d · failed %d", ok, failed))
	_ = b.bar.Add(1)
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
