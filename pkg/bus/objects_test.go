package bus_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func TestFiveMiBPromptGoesThroughTheObjectStore(t *testing.T) {
	t.Parallel()
	f := startFleet(t, fleetOpts{mock: mock.Config{Text: "got it"}})
	// No bound of its own: two 5 MiB prompts are chunked into the object
	// store, read back by the worker and encoded twice each way, work whose
	// time is the machine's (seconds under -race, far more on a loaded
	// one), not a condition that could be late. go test's -timeout bounds
	// it and prints every goroutine if it hangs.
	ctx := t.Context()
	prompt := strings.Repeat("lorem ipsum ", 5<<20/12+1)
	require.Greater(t, int64(len(prompt)), 5*f.nc.MaxPayload(), "the prompt must not fit in one message")

	for _, enc := range []bus.Encoding{bus.Msgpack, bus.JSON} {
		c, err := bus.NewClient(f.nc, bus.WithEncoding(enc))
		require.NoError(t, err)
		id := "large-" + enc.String()
		var events int
		res, err := c.Submit(ctx, "demo", userReq(id, prompt), bus.OnEvent(func(*bus.Event) { events++ }))
		require.NoError(t, err)
		require.Equal(t, "got it", res.Text)
		require.Positive(t, events, "a large job streams like any other")

		// The provider saw the whole prompt.
		var seen bool
		for _, r := range f.mock.Requests() {
			if len(r.Messages) == 1 && r.Messages[0].Text() == prompt {
				seen = true
			}
		}
		require.True(t, seen, "the worker must resolve the object, not run the stub")

		// The object is deleted once the result is stored (just after the
		// result is published).
		js, err := jetstream.New(f.nc)
		require.NoError(t, err)
		obs, err := js.ObjectStore(ctx, bus.BucketObjects)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := obs.GetInfo(ctx, id)
			return errors.Is(err, jetstream.ErrObjectNotFound)
		}, 5*time.Second, 20*time.Millisecond)
	}
}

func TestOversizedRequestWithoutObjectStoreIsTooLarge(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	c, err := bus.NewClient(nc, bus.WithoutObjectStore())
	require.NoError(t, err)
	ctx := ctxT(t, 10*time.Second)
	_, err = c.Publish(ctx, "demo", userReq("too-big", strings.Repeat("x", int(nc.MaxPayload()))))
	require.ErrorIs(t, err, bus.ErrTooLarge)
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeTooLarge})

	// What any other client gets when it sends an oversized message: the
	// connection refuses it.
	err = nc.Publish("llm.req.demo", make([]byte, nc.MaxPayload()+1))
	require.ErrorIs(t, err, nats.ErrMaxPayload)
}
