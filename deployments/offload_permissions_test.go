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
	"github.com/switchyard/switchyard/internal/vendortest"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/openai"
	"github.com/switchyard/switchyard/pkg/policy"
)

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

// The worker user may do all the vendor batch offload does, in the
// anonymous tenant's bucket and in a tenant's: make it, record lines, take
// the lease, list, record and remove batches.
func TestWorkerPermissionsCoverTheOffload(t *testing.T) {
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
	replay := vendortest.OpenAIBatches(t)
	replay.SetRunning(0)
	oa, err := openai.New(openai.Options{APIKey: "sk-test", BaseURL: replay.URL})
	require.NoError(t, err)
	target := policy.BatchTarget{Group: "demo", Deployment: "oa", Model: "gpt-4o-mini", Batcher: oa, Options: policy.VendorBatchOptions{MaxWait: time.Hour}}
	h := &offloadHost{done: map[string]bool{}}
	e := offload.New(js, []bus.Subjects{{}, {Tenant: "acme"}}, func(string, string) (policy.BatchTarget, bool) { return target, true }, h,
		offload.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
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
	require.Empty(t, pe.list())
}
