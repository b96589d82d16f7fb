//go:build !linux

package procgroup

import (
	"context"
	"os"
	"os/exec"
	"syscall"
)

// Command is exec.CommandContext; only on Linux does the command die with
// the process that started it, or its children with it.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}

// KillGroup kills cmd (its children only on Linux).
func KillGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }

// Signal sends sig to cmd (to its group only on Linux).
func Signal(cmd *exec.Cmd, sig syscall.Signal) error { return cmd.Process.Signal(os.Signal(sig)) }

// Run runs f.
func Run[T any](f func() (T, error)) (T, error) { return f() }

// Start starts cmd and returns a channel that receives cmd.Wait's error.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done, nil
}
