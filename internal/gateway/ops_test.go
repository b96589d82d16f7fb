package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func TestShutdownFinishesRunningStreams(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{slow: mockSlow(40, 25*time.Millisecond)})
	ctx := ctxT(t, 30*time.Second)
	_, frames := openStream(t, ctx, f.gw.URL+"/v1/chat/completions", slowBody)
	var got []sseFrame
	for fr := range frames {
		got = append(got, fr)
		if len(got) == 3 {
			// Shut the gateway down mid-stream.
			go f.gw.stop()
			eventually(t, 5*time.Second, func() bool {
				_, err := net.DialTimeout("tcp", strings.TrimPrefix(f.gw.URL, "http://"), 100*time.Millisecond)
				return err != nil
			}, "no new connections once shutdown began")
		}
	}
	require.Equal(t, "[DONE]", got[len(got)-1].data, "the running stream finished within the grace")
	require.Len(t, got, 1+40+2)
}

func TestTraceparentContinuesIntoTheJob(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	sub, err := f.nc.SubscribeSync("llm.req.demo")
	require.NoError(t, err)
	require.NoError(t, f.nc.Flush())
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	st, _, _ := post(t, f.gw.URL+"/v1/chat/completions", `{"model":"demo","messages":[{"role":"user","content":"x"}]}`,
		"traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	require.Equal(t, 200, st)
	m, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	// Read as the worker reads it (the carrier canonicalises the key).
	require.Contains(t, propagation.HeaderCarrier(m.Header).Get(bus.HeaderTraceParent), traceID, "%v", m.Header)
}

func TestAClientThatStopsReadingIsDroppedAndItsJobCancelled(t *testing.T) {
	t.Parallel()
	// A long answer with no delay fills the socket buffers at once.
	f := newFleet(t, fleetOpts{
		slow:    mock.Config{Text: strings.Repeat("word ", 150_000), ChunkDelay: time.Nanosecond},
		gateway: func(c *gatewayConfig) { c.WriteTimeout = 300 * time.Millisecond },
	})
	ctx := ctxT(t, 60*time.Second)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.gw.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+
		itoa(len(slowBody))+"\r\n\r\n"+slowBody)
	require.NoError(t, err)
	// Read the headers only, to learn the job id; then read nothing.
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	head := string(buf[:n])
	i := strings.Index(head, "X-Request-Id: ")
	require.GreaterOrEqual(t, i, 0, head)
	jobID := strings.TrimSpace(strings.SplitN(head[i+len("X-Request-Id: "):], "\r\n", 2)[0])
	var r *bus.Result
	eventually(t, 30*time.Second, func() bool {
		r, _ = f.client.StoredResult(ctx, f.client.Subjects().Reply(jobID))
		return r != nil
	}, "the stalled client's job ends")
	require.Equal(t, bus.CodeCancelled, r.Error.Code, "dropped after the write timeout, and its job cancelled")
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(f.gw.URL + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, p)
	}
	st, _, _ := post(t, f.gw.URL+"/v1/chat/completions", `{"model":"demo","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 200, st)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, f.gw.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `switchyard_gateway_requests_total{code="200",route="chat_completions"} 1`)
	require.Contains(t, string(b), `switchyard_gateway_time_to_first_event_seconds_count{route="chat_completions"} 1`)
}
