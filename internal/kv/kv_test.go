package kv_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/internal/kv"
	"github.com/switchyard/switchyard/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, natstest.Server(t)))
	require.NoError(t, err)
	b, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "T", History: 1})
	require.NoError(t, err)
	return b
}

type counter struct{ N int }

// Writers racing on one key lose no update, and a change that declines
// writes nothing. 32 writers: without a backoff between lost
// compare-and-sets, one writer lost 50 rounds in a row in every run.
func TestUpdateJSON(t *testing.T) {
	t.Parallel()
	b := bucket(t)
	const writers, each = 32, 10
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				ok, err := kv.UpdateJSON(t.Context(), b, "k", func(c *counter) bool { c.N++; return true })
				require.NoError(t, err)
				require.True(t, ok)
			}
		})
	}
	wg.Wait()
	e, err := b.Get(t.Context(), "k")
	require.NoError(t, err)
	var c counter
	require.NoError(t, json.Unmarshal(e.Value(), &c))
	require.Equal(t, writers*each, c.N)

	ok, err := kv.UpdateJSON(t.Context(), b, "k", func(c *counter) bool { return c.N < writers*each })
	require.NoError(t, err)
	require.False(t, ok)
	after, err := b.Get(t.Context(), "k")
	require.NoError(t, err)
	require.Equal(t, e.Revision(), after.Revision(), "a declined change writes nothing")
}

// A key that changes under every attempt ends in ErrContention after
// maxConflicts attempts, not in a loop without end.
func TestUpdateJSONContention(t *testing.T) {
	t.Parallel()
	b := bucket(t)
	_, err := b.Put(t.Context(), "k", []byte(`{"N":0}`))
	require.NoError(t, err)
	attempts := 0
	ok, err := kv.UpdateJSON(t.Context(), b, "k", func(c *counter) bool {
		attempts++
		_, err := b.Put(t.Context(), "k", []byte(`{"N":1}`)) // another writer, first every time
		require.NoError(t, err)
		c.N = 2
		return true
	})
	require.ErrorIs(t, err, kv.ErrContention)
	require.False(t, ok)
	require.Equal(t, 50, attempts)
}

// A mirror sees the values present at start, then puts and deletes; after
// Stop its goroutine is gone (goleak) and onEnd was not called.
func TestMirror(t *testing.T) {
	t.Parallel()
	b := bucket(t)
	_, err := b.Put(t.Context(), "before", []byte("1"))
	require.NoError(t, err)
	var mu sync.Mutex
	seen := map[string]string{}
	m, err := kv.Watch(b, func(e jetstream.KeyValueEntry) {
		mu.Lock()
		defer mu.Unlock()
		if e.Operation() == jetstream.KeyValuePut {
			seen[e.Key()] = string(e.Value())
		} else {
			delete(seen, e.Key())
		}
	}, func() { t.Error("onEnd after Stop") })
	require.NoError(t, err)
	_, err = b.Put(t.Context(), "after", []byte("2"))
	require.NoError(t, err)
	require.NoError(t, b.Delete(t.Context(), "before"))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 1 && seen["after"] == "2"
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, m.Stop())
}
