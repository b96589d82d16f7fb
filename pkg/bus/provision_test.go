package bus

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
)

// TestShortResultsMaxAge: results kept for less than the default dedupe
// window (1h) still provision; the window shrinks to the results' age,
// since a result that has expired cannot be deduplicated anyway. JetStream
// refuses a duplicates window larger than the max age, and a worker with
// SWITCHYARD_RESULTS_MAX_AGE=10m retried "waiting for JetStream" forever.
func TestShortResultsMaxAge(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)
	cfg := StreamsConfig{ResultsMaxAge: 10 * time.Minute, DurableEvents: true, EventsMaxAge: 5 * time.Minute}
	require.NoError(t, Provision(t.Context(), js, cfg))
	s, err := js.Stream(t.Context(), StreamResults)
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, 10*time.Minute, info.Config.MaxAge)
	require.Equal(t, 10*time.Minute, info.Config.Duplicates)
}
