package config

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// silentServer accepts one NATS connection, completes the handshake (INFO,
// CONNECT, PING/PONG) and then goes silent: it neither reads nor writes
// again, and it does not close, as a server cut off by a partition looks
// to its clients. It returns its URL and a channel closed when it fell
// silent.
func silentServer(t *testing.T) (string, <-chan time.Time) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	silent := make(chan time.Time, 1)
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		// A small receive buffer: the client's writes block once it and
		// the client's send buffer are full, as on a cut link.
		_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
		_, _ = c.Write([]byte(`INFO {"server_id":"silent","server_name":"silent","version":"2.12.0","proto":1,"headers":true,"max_payload":1048576}` + "\r\n"))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "PING") {
				_, _ = c.Write([]byte("PONG\r\n"))
				silent <- time.Now()
				return // silent from here on
			}
		}
	}()
	return "nats://" + ln.Addr().String(), silent
}

// TestNATSDropsASilentServerWithinItsBound: a client connected with
// NATSOptions, idle or busy publishing, drops a server that fell silent
// within NATSSilentBound (less the dial, there being no other server).
func TestNATSDropsASilentServerWithinItsBound(t *testing.T) {
	t.Parallel()
	for _, busy := range []int{0, 16} {
		t.Run(fmt.Sprintf("publishers=%d", busy), func(t *testing.T) {
			t.Parallel()
			// A bound of 3 s that the client meets in 2 s: the second is
			// for a loaded machine's late timers, not for the client.
			e, err := loadEnv(map[string]string{"NATS_PING_INTERVAL": "1s", "NATS_MAX_PINGS_OUT": "1"})
			require.NoError(t, err)
			url, silent := silentServer(t)
			opts, err := e.NATSOptions("silent-test")
			require.NoError(t, err)
			gone := make(chan time.Time, 1)
			opts = append(opts, nats.MaxReconnects(0), nats.DisconnectErrHandler(func(*nats.Conn, error) {
				select {
				case gone <- time.Now():
				default:
				}
			}))
			nc, err := nats.Connect(url, opts...)
			require.NoError(t, err)
			defer nc.Close()
			since := <-silent
			var stop atomic.Bool
			defer stop.Store(true)
			msg := make([]byte, 4<<10)
			for range busy {
				go func() {
					for !stop.Load() && nc.Publish("x", msg) == nil {
					}
				}()
			}
			bound := NATSSilentBound(e.NATSPingInterval, e.NATSMaxPingsOut) - nats.DefaultTimeout
			select {
			case at := <-gone:
				t.Logf("dropped %s after the server fell silent (bound %s)", at.Sub(since).Round(time.Millisecond), bound)
			case <-time.After(bound + time.Until(since)):
				t.Fatalf("still connected %s after the server fell silent", bound)
			}
		})
	}
}
