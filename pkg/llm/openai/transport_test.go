package openai_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm/openai"
)

// A Client without an HTTPClient must keep more than http.DefaultTransport's
// 2 idle connections per host: a worker running many streams to one vendor
// would otherwise dial (and handshake) for most calls.
func TestDefaultTransportReusesConnections(t *testing.T) {
	// Not parallel: it uses the package's shared default transport and
	// closes its idle connections at the end.
	const streams, rounds = 8, 5
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		textStream(w)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() {
		openai.CloseIdleConnections()
		srv.Close()
	})
	c, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1"})
	require.NoError(t, err)
	for range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, streams)
		for range streams {
			wg.Go(func() {
				s, err := c.Stream(t.Context(), userReq("hi"))
				if err != nil {
					errs <- err
					return
				}
				for s.Next() {
				}
				errs <- s.Err()
				_ = s.Close()
			})
		}
		wg.Wait()
		for range streams {
			require.NoError(t, <-errs)
		}
	}
	// A connection goes back to the pool shortly after its stream ends, so
	// a few more than streams dials are normal; a pool of 2 makes about
	// streams + (rounds-1)*(streams-2) = 32.
	require.LessOrEqual(t, dials.Load(), int64(2*streams), "connections were not reused across rounds")
}
