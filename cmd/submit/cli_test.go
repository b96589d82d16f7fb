package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

// runCLI runs submit with args against a server that is not there (no test
// here needs one) and returns the exit status and what went to stderr,
// error included, as main prints it.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errw bytes.Buffer
	err := run(t.Context(), args, strings.NewReader(""), &out, &errw)
	if err == nil {
		return 0, errw.String()
	}
	code := 1
	if ee, ok := err.(*exitError); ok {
		code = ee.code
	}
	if err.Error() != "" {
		errw.WriteString("submit: " + err.Error() + "\n")
	}
	return code, errw.String()
}

// TestCommandLineMistakesAreNamed pins the message of every command-line
// mistake: one line naming it (and what was probably meant), exit status 2.
func TestCommandLineMistakesAreNamed(t *testing.T) {
	t.Setenv("NATS_URL", "nats://127.0.0.1:1") // nothing listens: a command that gets past parsing fails to connect
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stauts"}, `submit: "stauts" is not a subcommand; did you mean submit status? To send "stauts" as a prompt: submit -- stauts`},
		{[]string{"bacth"}, `did you mean submit batch?`},
		{[]string{"-g", "demo", "status"}, `"status" is not a subcommand; did you mean submit status?`},
		{[]string{"tell", "me"}, `submit: got 2 arguments (tell, me): quote a prompt of several words: submit "tell me"`},
		{[]string{}, `submit: missing the prompt: submit "prompt" (or - to read it from stdin)`},
		{[]string{"--jsn", "hi"}, `submit: unknown flag --jsn; did you mean --json?`},
		{[]string{"-json", "hi"}, `submit: -json: long flags take two dashes: --json`},
		{[]string{"-group", "demo", "hi"}, `submit: -group: long flags take two dashes: --group`},
		{[]string{"--timeout", "5", "hi"}, `submit: --timeout 5: needs a unit, for example 5s`},
		{[]string{"--temperature", "warm", "hi"}, `submit: --temperature warm: want a number`},
		{[]string{"--encoding", "xml", "hi"}, `submit: --encoding "xml": want msgpack or json`},
		{[]string{"batch", "in.jsonl"}, `submit: missing -o OUT.jsonl, the output file (- for stdout): submit batch in.jsonl -o out.jsonl`},
		{[]string{"batch", "-o", "out.jsonl"}, `submit: missing the input file: submit batch IN.jsonl -o out.jsonl`},
		{[]string{"batch"}, `submit: missing the input file and -o OUT.jsonl: submit batch IN.jsonl -o OUT.jsonl`},
		{[]string{"batch", "a.jsonl", "b.jsonl", "-o", "x"}, `submit: one input file at a time, got 2: a.jsonl, b.jsonl`},
		{[]string{"cancel"}, `submit: missing the job id: submit cancel <job-id>`},
		{[]string{"watch"}, `submit: missing the job id: submit watch <job-id>`},
		{[]string{"watch", "j1", "--from-seq", "x"}, `submit: --from-seq x: want a whole number`},
		{[]string{"status", "now"}, `submit: submit status takes no arguments, got "now"`},
		{[]string{"bench", "extra"}, `submit: submit bench takes no arguments, got "extra"`},
	} {
		code, stderr := runCLI(t, tc.args...)
		require.Equal(t, 2, code, "%q: %s", tc.args, stderr)
		require.Contains(t, stderr, tc.want, "%q", tc.args)
		require.Regexp(t, `\n\(submit( \w+)? --help lists the flags\)\n$`, stderr, "%q: the second line says where the usage is", tc.args)
	}
}

// TestAPromptAfterDashDashIsAPrompt: -- makes a word that looks like a
// subcommand a prompt; it gets past parsing to the connection.
func TestAPromptAfterDashDashIsAPrompt(t *testing.T) {
	t.Setenv("NATS_URL", "nats://127.0.0.1:1")
	for _, args := range [][]string{{"--", "stauts"}, {"-g", "demo", "--", "status"}, {"hello"}, {"tell me"}} {
		code, stderr := runCLI(t, args...)
		require.Equal(t, 1, code, "%q", args)
		require.Contains(t, stderr, "connect to NATS at nats://127.0.0.1:1", "%q", args)
	}
}

// TestHelpListsEveryFlagInGNUForm: every subcommand's --help lists all its
// flags as --name (with the one-letter alias beside it), and says nothing
// Go's flag package would (-json, -g and -group as two flags, default -1).
func TestHelpListsEveryFlagInGNUForm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args  []string
		flags []string
	}{
		{[]string{"--help"}, []string{"-g, --group group", "--json", "--system", "--temperature float", "--max-tokens", "--timeout duration", "--id id", "--no-stream", "--schema file", "--partial", "--tools file", "--tool-choice", "--image path", "--encoding", "--tenant"}},
		{[]string{"help"}, []string{"-g, --group group", "submit cancel <job-id>", "exit status:"}},
		{[]string{"batch", "--help"}, []string{"-o, --output file", "-g, --group group", "--concurrency", "--format", "--batch-id id", "--encoding"}},
		{[]string{"help", "batch"}, []string{"-o, --output file"}},
		{[]string{"watch", "-h"}, []string{"--from-seq", "--attempt", "--json"}},
		{[]string{"status", "--help"}, []string{"--json", "FREE WORKERS counts"}},
		{[]string{"cancel", "--help"}, []string{"usage: submit cancel <job-id>"}},
		{[]string{"bench", "--help"}, []string{"-g, --group group", "-n, --jobs int", "--compare", "--worker-bin"}},
	} {
		code, help := runCLI(t, tc.args...)
		require.Zero(t, code, "%q", tc.args)
		for _, f := range tc.flags {
			require.Contains(t, help, f, "%q", tc.args)
		}
		require.Contains(t, help, "130  interrupted", "%q: exit statuses are listed", tc.args)
		require.NotRegexp(t, `(?m)^\s+-[a-z]{2,}`, help, "%q: a long flag with one dash", tc.args)
		require.NotContains(t, help, "(default -1)", "%q", tc.args)
		require.NotContains(t, help, "[=true|false]", "%q", tc.args)
		require.NotContains(t, help, "5m0s", "%q", tc.args)
	}
}

func TestStatusJSONKeepsSubjectsReadable(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, writeStatusJSON(&b, &bus.FleetStatus{Streams: []bus.StreamStatus{{Name: bus.StreamRequests, Subjects: []string{"llm.req.>"}}}}, nil))
	require.Contains(t, b.String(), `"llm.req.>"`)
	require.NotContains(t, b.String(), `\u003e`)
}

func TestStatusTableSaysFreeWorkers(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	printStatus(&b, &bus.FleetStatus{Groups: []bus.GroupStatus{{Group: "demo", Waiting: 1}}}, nil, time.Now())
	require.Regexp(t, regexp.MustCompile(`FREE WORKERS`), b.String())
	require.NotContains(t, b.String(), "WORKERS WAITING")
}

func TestStatusTableShowsVendorBatches(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	printStatus(&b, &bus.FleetStatus{Groups: []bus.GroupStatus{{Group: "demo"}}}, nil, time.Now())
	require.NotContains(t, b.String(), "VENDOR BATCHES", "no table without batches")
	b.Reset()
	printStatus(&b, &bus.FleetStatus{Groups: []bus.GroupStatus{{Group: "demo"}, {Group: "nightly", VendorBatches: 2, VendorBatchJobs: 1500}}}, nil, time.Now())
	require.Regexp(t, regexp.MustCompile(`(?m)^nightly\s+2\s+1500\s*$`), b.String())
	_, vendor, _ := strings.Cut(b.String(), "VENDOR BATCHES")
	require.NotContains(t, vendor, "demo", "only groups with vendor batches are listed")
}
