//go:build !linux

package config

import (
	"syscall"
	"time"
)

// unackedControl is nil off Linux: TCP_USER_TIMEOUT is Linux's, and the
// client relies on its pings and its write timeout alone.
func unackedControl(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
