package deployments

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/respcache"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

// The worker user may do all the response cache does, in the anonymous
// tenant's bucket and in a tenant's: make it, lock, store, read, watch,
// unlock.
func TestWorkerPermissionsCoverTheResponseCache(t *testing.T) {
	// Not parallel: the config's passwords come from the environment.
	t.Setenv("SWITCHYARD_PRODUCER_PASSWORD", "producer-secret")
	t.Setenv("SWITCHYARD_WORKER_PASSWORD", "worker-secret")
	t.Setenv("SWITCHYARD_ACME_PASSWORD", "acme-secret")
	t.Setenv("SWITCHYARD_GATEWAY_PASSWORD", "gateway-secret")
	t.Setenv("SWITCHYARD_OPERATOR_PASSWORD", "operator-secret")
	conf, err := server.ProcessConfigFile(filepath.Join("nats", "permissions.conf"))
	require.NoError(t, err)
	srv := natstest.Server(t, func(o *server.Options) { o.Users = conf.Users })
	pe := &permErrors{}
	nc := natstest.Connect(t, srv, nats.UserInfo("switchyard-worker", "worker-secret"), nats.ErrorHandler(pe.handler))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	store := respcache.New(js, respcache.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	for _, tenant := range []string{"", "acme"} {
		key := policy.CacheKey(tenant, "demo", &llm.Request{})
		ok, err := store.Lock(ctx, tenant, key, time.Minute)
		require.NoError(t, err, "tenant %q", tenant)
		require.True(t, ok)
		require.NoError(t, store.Put(ctx, tenant, key, &policy.CachedAnswer{Text: "hi", Expires: time.Now().Add(time.Hour)}, time.Hour))
		a, err := store.Get(ctx, tenant, key)
		require.NoError(t, err)
		require.Equal(t, "hi", a.Text)
		require.NoError(t, store.Unlock(ctx, tenant, key))
		require.NoError(t, store.Wait(ctx, tenant, key), "the lock is free: Wait returns at once")
	}
	require.Empty(t, pe.list())
}
