package kv_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/kv"
	"github.com/switchyard/switchyard/internal/natstest"
)

// TestBucketsOpenPerTenant: each tenant has its own bucket, made with the
// config; opened first, a missing bucket is only made when asked (nil
// until then); created first, it is made, or opened when another made it.
func TestBucketsOpenPerTenant(t *testing.T) {
	t.Parallel()
	js, err := jetstream.New(natstest.Connect(t, natstest.Server(t)))
	require.NoError(t, err)
	name := func(tenant string) string { return "B_" + tenant }
	cfg := jetstream.KeyValueConfig{History: 1, MaxBytes: 1 << 20}

	open := kv.NewBuckets(js, name, cfg, kv.OpenFirst)
	b, err := open.Open(t.Context(), "acme", false)
	require.NoError(t, err)
	require.Nil(t, b, "not made unless asked")
	b, err = open.Open(t.Context(), "acme", true)
	require.NoError(t, err)
	require.Equal(t, "B_acme", b.Bucket())
	st, err := b.Status(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.MaxBytes)

	created := kv.NewBuckets(js, name, cfg, kv.CreateFirst)
	b2, err := created.Open(t.Context(), "acme", true)
	require.NoError(t, err, "made by another: opened")
	_, err = b.Put(t.Context(), "k", []byte("v"))
	require.NoError(t, err)
	e, err := b2.Get(t.Context(), "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(e.Value()))
	other, err := created.Open(t.Context(), "globex", true)
	require.NoError(t, err)
	require.Equal(t, "B_globex", other.Bucket())
	require.Len(t, created.All(), 2)
}
