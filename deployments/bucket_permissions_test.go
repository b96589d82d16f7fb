package deployments

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/internal/respcache"
	"github.com/switchyard/switchyard/internal/vendortest"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/openai"
	"github.com/switchyard/switchyard/pkg/policy"
)

// TestWorkerPermissionsCoverTheBuckets: the worker user may do all that
// the per-tenant buckets' users do, in the anonymous tenant's bucket and in
// a tenant's, under permissions.conf, with no permission violation.
func TestWorkerPermissionsCoverTheBuckets(t *testing.T) {
	// Not parallel: the config's passwords come from the environment.
	t.Setenv("SWITCHYARD_PRODUCER_PASSWORD", "producer-secret")
	t.Setenv("SWITCHYARD_WORKER_PASSWORD", "worker-secret")
	t.Setenv("SWITCHYARD_ACME_PASSWORD", "acme-secret")
	t.Setenv("SWITCHYARD_GATEWAY_PASSWORD", "gateway-secret")
	t.Setenv("SWITCHYARD_OPERATOR_PASSWORD", "operator-secret")
	conf, err := server.ProcessConfigFile(filepath.Join("nats", "permissions.conf"))
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, ctx context.Context, js jetstream.JetStream)
	}{
		// Make the bucket (created first), lock, store, read, watch, unlock.
		{"response cache", useResponseCache},
		// Make the bucket (opened first), record lines, take the lease,
		// list, record and remove batches.
		{"offload", useOffload},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Server(t, func(o *server.Options) { o.Users = conf.Users })
			pe := &permErrors{}
			nc := natstest.Connect(t, srv, nats.UserInfo("switchyard-worker", "worker-secret"), nats.ErrorHandler(pe.handler))
			js, err := jetstream.New(nc)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			tt.run(t, ctx, js)
			require.Empty(t, pe.list())
		})
	}
}

func useResponseCache(t *testing.T, ctx context.Context, js jetstream.JetStream) {
	store := respcache.New(js, respcache.Config{})
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
}

func useOffload(t *testing.T, ctx context.Context, js jetstream.JetStream) {
	replay := vendortest.OpenAIBatches(t)
	replay.SetRunning(0)
	oa, err := openai.New(openai.Options{APIKey: "sk-test", BaseURL: replay.URL})
	require.NoError(t, err)
	target := policy.BatchTarget{Group: "demo", Deployment: "oa", Model: "gpt-4o-mini", Batcher: oa, Options: policy.VendorBatchOptions{MaxWait: time.Hour}}
	h := &offloadHost{done: map[string]bool{}}
	e := offload.New(js, []bus.Subjects{{}, {Tenant: "acme"}}, func(string, string) (policy.BatchTarget, bool) { return target, true }, h,
		offload.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, tenant := range []string{"", "acme"} {
		require.NoError(t, e.Add(ctx, &offload.Line{Job: "job-1", Group: "demo", Tenant: tenant, Data: []byte("{}"), Added: time.Now().Add(-time.Hour)}), "tenant %q", tenant)
	}
	for range 10 {
		e.Tick(ctx)
		if h.count() == 2 {
			break
		}
	}
	require.Equal(t, 2, h.count(), "both tenants' lines answered")
}

// offloadHost answers lines into a map.
type offloadHost struct {
	mu   sync.Mutex
	done map[string]bool
}

func (h *offloadHost) Request(*offload.Line) (*llm.Request, error) {
	return &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}}, nil
}

func (h *offloadHost) Answer(_ context.Context, l *offload.Line, _ *offload.Answer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done[l.Tenant+"/"+l.Job] = true
	return nil
}
func (h *offloadHost) Cancelled(*offload.Line) bool { return false }
func (h *offloadHost) Live(context.Context, *offload.Line, string) error {
	return nil
}

func (h *offloadHost) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.done) }
