//go:build !linux

package bench

import "os/exec"

// dieWithParent is a no-op where the kernel cannot tie a child's life to
// its parent's; --compare needs Linux's /proc anyway.
func dieWithParent(*exec.Cmd) {}
