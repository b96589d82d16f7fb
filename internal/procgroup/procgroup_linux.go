package procgroup

import (
	"context"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// waitDelay bounds the wait for output pipes that a stray descendant still
// holds once the group was killed.
const waitDelay = 5 * time.Second

// Command is exec.CommandContext(ctx, name, args...) set up as the package
// says: its own process group, killed whole when ctx is done, and SIGTERM
// when the process that started it dies.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return KillGroup(cmd) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// KillGroup sends SIGKILL to the process group of cmd, a started command
// from Command.
func KillGroup(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// Signal sends sig to the process group of cmd (as a terminal's Ctrl-C
// reaches a foreground job).
func Signal(cmd *exec.Cmd, sig syscall.Signal) error {
	return syscall.Kill(-cmd.Process.Pid, sig)
}

// Run runs f (which starts a command from Command and waits for it, such
// as cmd.CombinedOutput) on a thread locked to the calling goroutine, so
// that Pdeathsig is not sent early: Linux sends it when the starting thread
// exits, and Go ends a thread only when a goroutine locked to it exits.
func Run[T any](f func() (T, error)) (T, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return f()
}

// Start starts cmd, a command from Command, on a goroutine locked to its
// thread until the command has ended (see Run), and returns a channel that
// receives cmd.Wait's error. Start's own error is that of cmd.Start.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
