package config

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestNATSConnectionsGiveUpOnUnackedData: a connection dialled with
// NATSOptions has TCP_USER_TIMEOUT set to the pings' bound, so that the
// kernel ends it once a silent server leaves data unacknowledged that
// long, whatever holds the client's lock (see NATSOptions).
func TestNATSConnectionsGiveUpOnUnackedData(t *testing.T) {
	t.Parallel()
	e, err := loadEnv(map[string]string{"NATS_PING_INTERVAL": "2s", "NATS_MAX_PINGS_OUT": "2"})
	require.NoError(t, err)
	opts, err := e.NATSOptions("test")
	require.NoError(t, err)
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		require.NoError(t, opt(&o))
	}
	require.NotNil(t, o.CustomDialer, "NATSOptions dials with its own dialer")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := o.CustomDialer.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var ms int
	var serr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		ms, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}))
	require.NoError(t, serr)
	require.Equal(t, (6 * time.Second).Milliseconds(), int64(ms), "unacknowledged for 3 intervals of 2s: given up")
}
