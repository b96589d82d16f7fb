package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/gateway"
	"github.com/switchyard/switchyard/internal/natstest"
)

func TestKeysCreateListRevoke(t *testing.T) {
	srv := natstest.Server(t)
	t.Setenv("NATS_URL", srv.ClientURL())
	ctx := context.Background()
	var out, errOut bytes.Buffer
	require.NoError(t, run(ctx, []string{"keys", "create", "--tenant", "acme", "--name", "ci"}, nil, &out, &errOut))
	key := strings.TrimSpace(out.String())
	require.True(t, strings.HasPrefix(key, "sy-"), key)
	require.Contains(t, errOut.String(), "for acme")

	// Stored hashed: the bucket holds the hash, never the key.
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, gateway.BucketKeys)
	require.NoError(t, err)
	keys, err := gateway.ListKeys(ctx, kv)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Equal(t, gateway.HashKey(key), keys[0].Hash)
	e, err := kv.Get(ctx, "sha256."+strings.TrimPrefix(keys[0].Hash, "sha256:"))
	require.NoError(t, err)
	require.NotContains(t, string(e.Value()), key)

	out.Reset()
	require.NoError(t, run(ctx, []string{"keys", "list"}, nil, &out, &errOut))
	require.Contains(t, out.String(), keys[0].ID())
	require.Contains(t, out.String(), "acme")
	require.NotContains(t, out.String(), key)

	require.NoError(t, run(ctx, []string{"keys", "revoke", keys[0].ID()}, nil, &out, &errOut))
	keys, err = gateway.ListKeys(ctx, kv)
	require.NoError(t, err)
	require.Empty(t, keys)

	out.Reset()
	require.NoError(t, run(ctx, []string{"keys", "hash", "sk-123"}, nil, &out, &errOut))
	require.Equal(t, "api_keys:\n  - sha256: "+strings.TrimPrefix(gateway.HashKey("sk-123"), "sha256:")+"\n", out.String())

	err = run(ctx, []string{"keys", "rotate"}, nil, &out, &errOut)
	require.ErrorContains(t, err, `"rotate" is not an action`)
}
