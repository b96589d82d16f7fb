//go:build !linux

package integration

import (
	"context"
	"os/exec"
)

// buildCommand is a command of the image build; only on Linux does it die
// with the test process (see buildcmd_linux_test.go).
func buildCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}

func runCommand[T any](f func() (T, error)) (T, error) { return f() }
