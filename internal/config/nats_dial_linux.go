package config

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// unackedControl sets TCP_USER_TIMEOUT on a dialled socket: the kernel
// ends the connection once data it sent stays unacknowledged for d, and
// every blocked write and the pending read fail at once with ETIMEDOUT.
func unackedControl(d time.Duration) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
		})
		if err != nil {
			return err
		}
		return serr
	}
}
