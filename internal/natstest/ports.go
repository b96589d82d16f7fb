package natstest

import (
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FixedPorts finds n free TCP ports for servers that a test stops and
// starts again on the same port (an embedded server restarted on its
// store, a container's fixed host binding), below the kernel's ephemeral
// range. A port asked of the kernel (":0") comes from that range, and so
// does the local port of every outgoing connection: while the server was
// down, a connection (a health probe, a client's reconnect, Docker's
// proxy) could take its port and the server could not listen again
// ("bind: address already in use"; a CI run of the container suite lost a
// NATS node for good so). Below the range, only a listener that asks for
// the port by number can.
func FixedPorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := ephemeralPorts()
	ports, err := pickPorts(n, lo, hi, mrand.IntN, func(p int) (io.Closer, error) {
		return net.Listen("tcp", ":"+strconv.Itoa(p)) // every address, as a server's may be
	})
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	return ports
}

// ephemeralPorts is the kernel's range for the ports it assigns
// (net.ipv4.ip_local_port_range), or Linux's default.
func ephemeralPorts() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return lo, hi
	}
	return l, h
}

// pickPorts returns n ports outside [lo, hi] that listen accepts, drawn
// at random (two test processes on one machine rarely try the same ones)
// from 10000 up to the range, or above it when the range starts too low.
// The listeners are held until all n are found, so that no port is drawn
// twice.
func pickPorts(n, lo, hi int, intN func(int) int, listen func(port int) (io.Closer, error)) ([]int, error) {
	const floor, span = 10000, 1000
	first, last := floor, lo-1
	if last-first < span {
		first, last = hi+1, 65535
	}
	if last-first < span {
		return nil, fmt.Errorf("no room for fixed ports outside the ephemeral range %d-%d", lo, hi)
	}
	var ports []int
	var held []io.Closer
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 10*span {
			return nil, fmt.Errorf("%d free ports not found in %d-%d after %d tries", n, first, last, tries)
		}
		p := first + intN(last-first+1)
		l, err := listen(p)
		if err != nil {
			continue
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	return ports, nil
}
