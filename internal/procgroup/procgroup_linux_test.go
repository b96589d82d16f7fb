package procgroup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// helperEnv makes the test binary run as the helper of the tests that kill
// their parent: it starts the command helperCmdEnv names with Command and
// waits for it, until it is killed. The command writes the process id to
// watch to the file helperEnv names.
const (
	helperEnv    = "SWITCHYARD_PROCGROUP_HELPER_PIDFILE"
	helperCmdEnv = "SWITCHYARD_PROCGROUP_HELPER_CMD"
)

// TestHelperProcess is not a test: it is the process the tests below kill.
func TestHelperProcess(t *testing.T) {
	pidfile := os.Getenv(helperEnv)
	if pidfile == "" {
		t.Skip("the helper of the tests that kill their parent")
	}
	switch os.Getenv(helperCmdEnv) {
	case "sh":
		cmd := Command(context.Background(), "sh", "-c", `echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 60`, "sh", pidfile)
		_, err := Run(cmd.CombinedOutput)
		t.Logf("the command ended: %v", err) // only when the parent failed to kill this process
	case "make":
		// A recipe under make, as make build runs go build: the sleep is
		// this process's grandchild.
		mk := filepath.Join(filepath.Dir(pidfile), "Makefile")
		require.NoError(t, os.WriteFile(mk, []byte("all:\n\tsh -c 'echo $$$$ > \"$(PIDFILE).tmp\" && mv \"$(PIDFILE).tmp\" \"$(PIDFILE)\" && exec sleep 60'\n"), 0o644))
		cmd := Command(context.Background(), "make", "-s", "-f", mk, "PIDFILE="+pidfile)
		done, err := Start(cmd)
		require.NoError(t, err)
		t.Logf("make ended: %v", <-done)
	}
}

// killParent runs the helper with the given command, waits for the process
// it names, kills the helper with SIGKILL (as go test's -timeout or a user
// ends a test binary) and requires that process to die too.
func killParent(t *testing.T, command string) {
	t.Helper()
	pidfile := filepath.Join(t.TempDir(), "pid")
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
	helper.Env = append(os.Environ(), helperEnv+"="+pidfile, helperCmdEnv+"="+command)
	require.NoError(t, helper.Start())
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })

	pid := waitPID(t, pidfile)
	require.NoError(t, helper.Process.Signal(syscall.SIGKILL))
	_ = helper.Wait()
	requireDies(t, pid, "the process started under the killed parent")
}

// TestCommandDiesWithItsParent: a command from Command does not outlive
// the process that started it when that process is killed outright.
func TestCommandDiesWithItsParent(t *testing.T) {
	t.Parallel()
	killParent(t, "sh")
}

// TestMakesRecipeDiesWithMakesParent: the recipe make runs (go build under
// make build) does not outlive the killed process that started make: make
// gets SIGTERM and passes it on. With SIGKILL as the parent-death signal,
// this fails: make dies and its recipe runs on.
func TestMakesRecipeDiesWithMakesParent(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	t.Parallel()
	killParent(t, "make")
}

// TestCancelKillsTheGroup: cancelling the context of a command from
// Command kills the processes it started as well (go build's compile and
// link processes), not only the command itself.
func TestCancelKillsTheGroup(t *testing.T) {
	t.Parallel()
	pidfile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := Command(ctx, "sh", "-c", `sleep 60 & echo $! > "$1.tmp" && mv "$1.tmp" "$1"; wait`, "sh", pidfile)
	done, err := Start(cmd)
	require.NoError(t, err)
	pid := waitPID(t, pidfile)
	cancel()
	require.Error(t, <-done, "the cancelled command exited cleanly")
	requireDies(t, pid, "the child of the cancelled command")
}

// waitPID reads the process id a helper wrote to path, and makes sure
// that process is killed when the test ends, whatever its result. The
// helper is a fresh test binary: on a loaded machine it may take a while
// to start, hence a bound far above its usual milliseconds.
func waitPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			require.NoError(t, err, "pid file %q", b)
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			return pid
		}
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.True(t, time.Now().Before(deadline), "no pid in %s after 60s", path)
		time.Sleep(20 * time.Millisecond)
	}
}

// requireDies waits for process pid to be gone (or a zombie: an orphan's
// reaper may be slow or absent in a container). The signal is sent at
// once; the bound only covers a loaded machine's scheduling, and stays
// far below the 60 s the commands would otherwise run.
func requireDies(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for alive(t, pid) {
		require.True(t, time.Now().Before(deadline), "%s (pid %d) still runs 20s later", what, pid)
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		// Gone, or reaped between the open and the read (ESRCH: seen in a
		// clean-clone make test).
		return false
	}
	require.NoError(t, err)
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(b)
	rest := s[strings.LastIndexByte(s, ')')+1:]
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}
