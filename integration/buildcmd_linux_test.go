package integration

import (
	"context"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// buildCommand is a command of the image build (go build, go env) that dies
// with the test process. The test binary may die without cancelling ctx
// (go test's -timeout panics it, a SIGKILL from go test or from a user), and
// a go build left running keeps the machine busy and holds whatever lock
// the run was started under (flock's descriptor is inherited). So:
//   - Pdeathsig kills the command when the thread that started it dies,
//     that is when the test process dies (runCommand keeps that thread
//     locked to its goroutine until the command has ended);
//   - the command leads its own process group, and a cancelled ctx kills
//     the whole group: go build's compile and link processes as well.
//
// A compile that go build had started when the test process died still
// runs to its end (Pdeathsig reaches go build only); that is seconds.
func buildCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// The group is dead once Cancel returns; WaitDelay only bounds the
	// wait for output pipes a stray descendant might still hold.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runCommand runs f (which starts cmd and waits for it, such as
// cmd.CombinedOutput) on a thread locked to the calling goroutine, so that
// Pdeathsig is not sent early: Linux sends it when the starting thread
// exits, and Go ends a thread only when a goroutine locked to it exits.
func runCommand[T any](f func() (T, error)) (T, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return f()
}
