package docs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/procgroup"
)

// TestREADMEWalksOnACleanCheckout copies the repository's files (what git
// tracks, and new files it does not ignore: no bin/, no data/) to an empty
// directory and follows the README there: make build, make run, every
// bin/submit command of the README (placeholders filled in), and the
// two-workers recipe. Every command of the README's sh blocks is also
// checked against the binaries: its make target exists, its subcommand and
// each of its flags is in that subcommand's --help, each variable it sets
// is one the worker knows. So the README and the binaries cannot disagree.
func TestREADMEWalksOnACleanCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries in a clean copy")
	}
	ctx, cancel := walkContext(t)
	defer cancel()
	dir := cleanCheckout(t)
	cmds := readmeCommands(t, filepath.Join(dir, "README.md"))
	require.NotEmpty(t, cmds)

	run := func(env []string, name string, args ...string) (string, string, error) {
		// make's children (go build) are killed with it when the test's
		// time is up, and when the test process dies (procgroup).
		cmd := procgroup.Command(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		_, err := procgroup.Run(func() (struct{}, error) { return struct{}{}, cmd.Run() })
		return out.String(), errb.String(), err
	}
	_, stderr, err := run(nil, "make", "build")
	require.NoError(t, err, "make build in a clean checkout:\n%s", stderr)
	for _, b := range []string{"bin/worker", "bin/submit"} {
		require.FileExists(t, filepath.Join(dir, b))
	}

	// Every command is something the binaries take.
	targets, _, err := run(nil, "make", "help")
	require.NoError(t, err)
	helps := map[string]string{}
	help := func(bin string, sub string) string {
		key := bin + " " + sub
		if h, ok := helps[key]; ok {
			return h
		}
		args := []string{"--help"}
		if sub != "" {
			args = []string{sub, "--help"}
		}
		out, errOut, err := run(nil, filepath.Join(dir, bin), args...)
		require.NoError(t, err, "%s %s --help", bin, sub)
		helps[key] = out + errOut
		return helps[key]
	}
	for _, c := range cmds {
		for _, part := range c.parts {
			checkCommand(t, c.line, part, targets, help)
		}
	}

	// The quick start, as written: make run (the worker on an embedded
	// server), then the submit commands in a second terminal.
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	workerEnv := []string{
		"SWITCHYARD_EMBEDDED_ADDR=" + addr, "SWITCHYARD_DATA_DIR=" + filepath.Join(dir, "data"),
		"SWITCHYARD_METRICS_ADDR=off", "SWITCHYARD_HTTP_ADDR=", "NATS_URL=",
	}
	first := startProcess(ctx, t, dir, workerEnv, "make", "run")
	first.waitFor(t, "Switchyard is ready")
	require.Contains(t, first.output(), "bin/submit \"Tell me about switchyards\"", "the banner names the built binary")

	submitEnv := []string{"NATS_URL=nats://" + addr}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(
		`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"demo","messages":[{"role":"user","content":"hi"}]}}`+"\n"), 0o600))
	jobID := ""
	ran := 0
	for _, c := range cmds {
		if !c.runnable() {
			continue
		}
		line := c.line
		if strings.Contains(line, "<job-id>") {
			require.NotEmpty(t, jobID, "%s: no job ran before it", line)
			line = strings.ReplaceAll(line, "<job-id>", jobID)
		}
		out, stderr, err := run(submitEnv, "bash", "-c", line)
		require.NoError(t, err, "README: %s\nstdout:\n%s\nstderr:\n%s", line, out, stderr)
		ran++
		if strings.Contains(line, "--json") && !strings.Contains(line, "status") {
			var res struct {
				ID, Status string
			}
			require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &res), "%s: %q", line, out)
			require.Equal(t, "ok", res.Status, line)
			jobID = res.ID
		}
	}
	require.GreaterOrEqual(t, ran, 8, "the README's submit commands ran")

	// Two workers on one machine: the second joins the first's server.
	var recipe *readmeCommand
	for i, c := range cmds {
		if strings.Contains(c.line, "NATS_URL=") && strings.Contains(c.line, "bin/worker") {
			recipe = &cmds[i]
		}
	}
	require.NotNil(t, recipe, "the README has the two-workers recipe")
	// The recipe's variables (checked above against the worker's), with a
	// free metrics address here instead of the README's fixed one.
	env2 := slices.Clone(workerEnv)
	for _, kv := range recipe.parts[0].env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NATS_URL":
			env2 = append(env2, "NATS_URL=nats://"+addr)
		case "SWITCHYARD_METRICS_ADDR":
			env2 = append(env2, fmt.Sprintf("SWITCHYARD_METRICS_ADDR=127.0.0.1:%d", freePort(t)))
		default:
			env2 = append(env2, kv)
		}
	}
	second := startProcess(ctx, t, dir, env2, "bin/worker")
	second.waitFor(t, "worker ready")
	out, stderr, err := run(submitEnv, "bin/submit", "--json", "from the fleet of two")
	require.NoError(t, err, "%s%s", out, stderr)
	require.Zero(t, second.stop(t), "the second worker stops cleanly on Ctrl-C:\n%s", second.output())
	require.Contains(t, second.output(), "worker stopped")
	first.stopGroup(t)
	require.Contains(t, first.output(), "worker stopped", "make run's worker stops cleanly on Ctrl-C")
}

// cleanCheckout copies the repository's files to a new directory.
func cleanCheckout(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err, "the README walk needs git to tell the repository's files from build output")
	dst := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		fi, err := os.Lstat(src)
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet committed
		}
		require.NoError(t, err)
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dst, f), b, fi.Mode().Perm()))
	}
	return dst
}

// readmeCommand is one line of a README sh block.
type readmeCommand struct {
	line  string
	parts []cmdPart // the commands of a pipeline
}

type cmdPart struct {
	env  []string // VAR=value before the command
	name string
	args []string
}

// runnable reports whether the walk runs the line against the worker: the
// submit commands (make targets and workers are run on their own).
func (c readmeCommand) runnable() bool {
	last := c.parts[len(c.parts)-1]
	return last.name == "bin/submit" && len(last.env) == 0
}

var shBlock = regexp.MustCompile("(?s)```sh\n(.*?)```")

// readmeCommands returns the commands of the README's sh blocks, comments
// dropped.
func readmeCommands(t *testing.T, path string) []readmeCommand {
	t.Helper()
	var out []readmeCommand
	for _, m := range shBlock.FindAllStringSubmatch(string(mustRead(t, path)), -1) {
		sc := bufio.NewScanner(strings.NewReader(m[1]))
		pending := ""
		for sc.Scan() {
			text := sc.Text()
			if cont, ok := strings.CutSuffix(strings.TrimRight(text, " "), "\\"); ok {
				pending += cont + " " // a line continued on the next
				continue
			}
			line := stripComment(pending + text)
			pending = ""
			if line == "" {
				continue
			}
			c := readmeCommand{line: line}
			for _, seg := range splitPipe(line) {
				words := shellWords(t, seg)
				var p cmdPart
				for len(words) > 0 && regexp.MustCompile(`^[A-Z_]+=`).MatchString(words[0]) {
					p.env, words = append(p.env, words[0]), words[1:]
				}
				require.NotEmpty(t, words, "README line %q", line)
				p.name, p.args = words[0], words[1:]
				c.parts = append(c.parts, p)
			}
			out = append(out, c)
		}
	}
	return out
}

// scanUnquoted calls fn with each rune of s that is outside quotes, and its
// index, until fn returns false.
func scanUnquoted(s string, fn func(i int, r rune) bool) {
	quote := rune(0)
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case !fn(i, r):
			return
		}
	}
}

// stripComment drops a trailing "# ..." that is outside quotes.
func stripComment(s string) string {
	cut := len(s)
	scanUnquoted(s, func(i int, r rune) bool {
		if r == '#' && (i == 0 || s[i-1] == ' ') {
			cut = i
			return false
		}
		return true
	})
	return strings.TrimSpace(s[:cut])
}

// splitPipe splits a pipeline at the '|' outside quotes.
func splitPipe(s string) []string {
	var out []string
	start := 0
	scanUnquoted(s, func(i int, r rune) bool {
		if r == '|' {
			out = append(out, s[start:i])
			start = i + 1
		}
		return true
	})
	return append(out, s[start:])
}

// shellWords splits a command the way sh does for the README's simple
// lines: white space, single and double quotes.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	quote, in := rune(0), false
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words, in = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	require.Zero(t, quote, "unbalanced quote in %q", s)
	if in {
		words = append(words, cur.String())
	}
	return words
}

var submitSubcommands = []string{"cancel", "batch", "watch", "status", "bench", "help"}

// checkCommand checks one command of the README against the binaries.
func checkCommand(t *testing.T, line string, p cmdPart, targets string, help func(bin, sub string) string) {
	t.Helper()
	switch p.name {
	case "make":
		for _, target := range p.args {
			require.Regexp(t, `(?m)^\s+`+regexp.QuoteMeta(target)+`\s`, targets, "README: %s: make has no target %s", line, target)
		}
	case "bin/submit", "bin/worker":
		sub := ""
		if p.name == "bin/submit" {
			for _, a := range p.args {
				if a == "--" {
					break
				}
				if !strings.HasPrefix(a, "-") {
					if slices.Contains(submitSubcommands, a) {
						sub = a
					}
					break
				}
			}
		}
		h := help(p.name, sub)
		for _, a := range p.args {
			if a == "--" {
				break
			}
			if a == "-" || !strings.HasPrefix(a, "-") {
				continue
			}
			name, _, _ := strings.Cut(a, "=")
			if strings.HasPrefix(name, "--") {
				require.Regexp(t, `(?m)^\s+(-\w, )?`+regexp.QuoteMeta(name)+`\b`, h, "README: %s: %s %s has no flag %s", line, p.name, sub, name)
			} else {
				require.Regexp(t, `(?m)^\s+`+regexp.QuoteMeta(name)+`, --`, h, "README: %s: %s %s has no flag %s", line, p.name, sub, name)
			}
		}
		for _, kv := range p.env {
			name, _, _ := strings.Cut(kv, "=")
			require.Contains(t, help("bin/worker", ""), "  "+name+" ", "README: %s: the worker has no variable %s", line, name)
		}
	case "echo", "nats", "go", "cd", "npm", "pip", "python", "node", "curl":
		// Not Switchyard's binaries: the nats CLI example runs in
		// examples/, the HTTP calls in the gateway's tests.
	default:
		t.Errorf("README: %s: the walk does not know the command %s; teach it or check it by hand", line, p.name)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// process is a command started by the walk, its output collected.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startProcess(ctx context.Context, t *testing.T, dir string, env []string, name string, args ...string) *process {
	t.Helper()
	p := &process{done: make(chan struct{})}
	p.cmd = procgroup.Command(ctx, name, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.Stdin = nil
	waited, err := procgroup.Start(p.cmd)
	require.NoError(t, err)
	go func() { p.err = <-waited; close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = procgroup.KillGroup(p.cmd)
			<-p.done
		}
	})
	return p
}

// waitFor waits until the output holds s, or the process ends. It has no
// bound of its own: what it waits for (make run builds the binaries, then
// the worker starts) takes what the machine gives it, and the walk's
// context (walkContext) kills the process in time to report its output.
func (p *process) waitFor(t *testing.T, s string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(p.output(), s) {
		select {
		case <-p.done:
			t.Fatalf("%s ended (%v) before printing %q:\n%s", p.cmd, p.err, s, p.output())
		case <-tick.C:
		}
	}
}

// walkReportMargin is how long before go test's -timeout the walk's
// context ends: enough to kill what runs, collect its output and fail with
// it, instead of the timeout's panic that shows none of it.
const walkReportMargin = 30 * time.Second

// walkContext bounds the walk by the test binary's own deadline (go test's
// -timeout; the Makefile gives the unit tests 15 minutes) rather than by a
// guess of how long a clean build takes on a loaded machine: building the
// binaries and starting workers is the work itself, not a condition that
// could be late.
func walkContext(t *testing.T) (context.Context, context.CancelFunc) {
	d, ok := t.Deadline()
	if !ok {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadline(context.Background(), d.Add(-walkReportMargin))
}

// stop sends SIGINT (Ctrl-C) to the process and returns its exit status.
func (p *process) stop(t *testing.T) int { return p.signal(t, p.cmd.Process.Pid) }

// stopGroup sends SIGINT to the process's group: make and the worker it
// runs, as a terminal's Ctrl-C does. (Without a terminal make itself dies of
// the signal; on one, make run gives the worker the terminal and exits with
// its status.)
func (p *process) stopGroup(t *testing.T) { p.signal(t, -p.cmd.Process.Pid) }

func (p *process) signal(t *testing.T, pid int) int {
	t.Helper()
	require.NoError(t, syscall.Kill(pid, syscall.SIGINT))
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not stop in 60s after SIGINT:\n%s", p.cmd, p.output())
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
