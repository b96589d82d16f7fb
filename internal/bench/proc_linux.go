package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send the child SIGTERM when this process
// dies, so that a killed bench leaves no NATS server or worker behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
