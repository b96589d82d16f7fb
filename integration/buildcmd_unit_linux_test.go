package integration

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// buildCmdHelperEnv makes the test binary run as the helper of
// TestBuildCommandDiesWithTheTestProcess: it starts a long command with
// buildCommand and waits for it, until it is killed.
const buildCmdHelperEnv = "SWITCHYARD_BUILDCMD_HELPER_PIDFILE"

// TestBuildCommandDiesWithTheTestProcess: a command started by
// buildCommand (an image build's go build) does not outlive a test process
// that is killed outright, the way go test's -timeout or a SIGKILL ends
// it. The test runs a copy of this test binary that starts a long command,
// kills the copy with SIGKILL and requires the command to die too.
func TestBuildCommandDiesWithTheTestProcess(t *testing.T) {
	if pidfile := os.Getenv(buildCmdHelperEnv); pidfile != "" {
		cmd := buildCommand(context.Background(), "sh", "-c", `echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 60`, "sh", pidfile)
		_, err := runCommand(cmd.CombinedOutput)
		t.Logf("the command ended: %v", err) // only when the parent failed to kill this process
		return
	}
	t.Parallel()
	pidfile := filepath.Join(t.TempDir(), "pid")
	helper := exec.Command(os.Args[0], "-test.run=^TestBuildCommandDiesWithTheTestProcess$", "-test.count=1")
	helper.Env = append(os.Environ(), buildCmdHelperEnv+"="+pidfile)
	require.NoError(t, helper.Start())
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })

	pid := waitPID(t, pidfile)
	require.NoError(t, helper.Process.Signal(syscall.SIGKILL))
	_ = helper.Wait()
	requireDies(t, pid, "the command started by the killed test process")
}

// TestBuildCommandCancelKillsTheGroup: cancelling the context of a command
// started by buildCommand kills the processes it started as well (go
// build's compile and link processes), not only the command itself.
func TestBuildCommandCancelKillsTheGroup(t *testing.T) {
	t.Parallel()
	pidfile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runtime.LockOSThread() // see runCommand
	defer runtime.UnlockOSThread()
	cmd := buildCommand(ctx, "sh", "-c", `sleep 60 & echo $! > "$1.tmp" && mv "$1.tmp" "$1"; wait`, "sh", pidfile)
	require.NoError(t, cmd.Start())
	pid := waitPID(t, pidfile)
	cancel()
	require.Error(t, cmd.Wait(), "the cancelled command exited cleanly")
	requireDies(t, pid, "the child of the cancelled command")
}

// waitPID reads the process id a helper wrote to path, and makes sure
// that process is killed when the test ends, whatever its result.
func waitPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			require.NoError(t, err, "pid file %q", b)
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			return pid
		}
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.True(t, time.Now().Before(deadline), "no pid in %s after 30s", path)
		time.Sleep(20 * time.Millisecond)
	}
}

// requireDies waits up to 10 seconds for process pid to be gone (or a
// zombie: an orphan's reaper may be slow or absent in a container).
func requireDies(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(t, pid) {
		require.True(t, time.Now().Before(deadline), "%s (pid %d) still runs 10s later", what, pid)
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	require.NoError(t, err)
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(b)
	rest := s[strings.LastIndexByte(s, ')')+1:]
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}
