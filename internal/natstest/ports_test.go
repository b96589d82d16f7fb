package natstest

import (
	"errors"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// Ports that a server listens on again after a restart must lie outside
// the kernel's ephemeral range: a port inside it can be taken as the local
// port of an outgoing connection while the server is down, and the server
// (or container) then cannot listen again (Docker: "bind: address already
// in use"). The container suite's old freePorts asked the kernel (":0")
// and so always drew from the range.
func TestFixedPortsAreOutsideTheEphemeralRange(t *testing.T) {
	lo, hi := ephemeralPorts()
	ports := FixedPorts(t, 5)
	require.Len(t, ports, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		require.Falsef(t, p >= lo && p <= hi, "port %d is in the ephemeral range %d-%d", p, lo, hi)
		require.False(t, seen[p], "port %d drawn twice", p)
		seen[p] = true
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		require.NoError(t, err, "port %d is not free", p)
		require.NoError(t, l.Close())
	}
}

type closer struct{}

func (closer) Close() error { return nil }

func TestPickPorts(t *testing.T) {
	busy := errors.New("in use")
	seq := func(vals ...int) func(int) int {
		i := 0
		return func(n int) int { v := vals[i%len(vals)] % n; i++; return v }
	}
	t.Run("skips busy ports and repeats", func(t *testing.T) {
		taken := map[int]bool{}
		listen := func(p int) (io.Closer, error) {
			if p == 10005 || taken[p] {
				return nil, busy
			}
			taken[p] = true // held until pickPorts returns
			return closer{}, nil
		}
		ports, err := pickPorts(3, 32768, 60999, seq(5, 7, 7, 9, 11), listen)
		require.NoError(t, err)
		require.Equal(t, []int{10007, 10009, 10011}, ports)
	})
	t.Run("above a range that starts low", func(t *testing.T) {
		ports, err := pickPorts(2, 1024, 50000, seq(0, 1), func(int) (io.Closer, error) { return closer{}, nil })
		require.NoError(t, err)
		require.Equal(t, []int{50001, 50002}, ports)
	})
	t.Run("no room", func(t *testing.T) {
		_, err := pickPorts(1, 1024, 65000, seq(0), func(int) (io.Closer, error) { return closer{}, nil })
		require.Error(t, err)
	})
	t.Run("gives up", func(t *testing.T) {
		_, err := pickPorts(1, 32768, 60999, seq(0), func(int) (io.Closer, error) { return nil, busy })
		require.Error(t, err)
	})
}
