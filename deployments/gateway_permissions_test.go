package deployments

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/gateway"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// TestGatewayPermissions runs the real HTTP gateway as the GATEWAY user of
// nats/permissions.conf, in front of a worker (the WORKER user), for tenant
// acme: chat completions (whole and streamed), an async job, the files and
// batches APIs, the webhook secret, an admin call, and the console's
// background sampling. The gateway needs no subject its user lacks.
func TestGatewayPermissions(t *testing.T) {
	// Not parallel: the config's passwords come from the environment.
	for _, u := range []string{"PRODUCER", "WORKER", "ACME", "GATEWAY", "OPERATOR"} {
		t.Setenv("SWITCHYARD_"+u+"_PASSWORD", strings.ToLower(u)+"-secret")
	}
	conf, err := server.ProcessConfigFile(filepath.Join("nats", "permissions.conf"))
	require.NoError(t, err)
	srv := natstest.Server(t, func(o *server.Options) { o.Users = conf.Users })
	connect := func(user, pass string) (*nats.Conn, *permErrors) {
		t.Helper()
		pe := &permErrors{}
		return natstest.Connect(t, srv, nats.UserInfo(user, pass), nats.ErrorHandler(pe.handler)), pe
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	wnc, wperm := connect("switchyard-worker", "worker-secret")
	router, err := policy.NewRouter([]policy.Group{{Name: "demo", Deployments: []policy.Deployment{{
		Name: "mock", Model: "mock-1", Provider: mock.New(mock.Config{Tokens: 5}),
	}}}})
	require.NoError(t, err)
	w, err := worker.New(wnc, router, worker.Config{
		Groups: []string{"demo"}, TenantNames: []string{"acme"}, ShutdownGrace: time.Second,
		FetchWait: 200 * time.Millisecond, Logger: quiet,
	})
	require.NoError(t, err)
	wctx, stopWorker := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	t.Cleanup(func() { stopWorker(); require.NoError(t, <-wdone) })
	select {
	case <-w.Ready():
	case err := <-wdone:
		t.Fatalf("worker: %v (violations %v)", err, wperm.list())
	case <-time.After(20 * time.Second):
		t.Fatalf("worker not ready (violations %v)", wperm.list())
	}

	// A vendor batch in flight in each tenant's offload bucket, recorded
	// as the worker's user does: the console reads them (read only).
	wjs, err := jetstream.New(wnc)
	require.NoError(t, err)
	for _, tenant := range []string{"", "acme"} {
		kv, err := wjs.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: bus.Subjects{Tenant: tenant}.OffloadBucket(), History: 1})
		require.NoError(t, err, "tenant %q (violations %v)", tenant, wperm.list())
		data, err := json.Marshal(offload.Batch{Ref: "sy-1", Group: "demo", Deployment: "oa", Jobs: []string{"job-1"}, State: "submitted", VendorID: "batch_1", Created: time.Now()})
		require.NoError(t, err)
		_, err = kv.Put(t.Context(), bus.OffloadBatchKey("demo", "sy-1"), data)
		require.NoError(t, err, "tenant %q (violations %v)", tenant, wperm.list())
	}

	gnc, gperm := connect("switchyard-gateway", "gateway-secret")
	cat, err := gateway.NewCatalog([]gateway.Model{{Name: "demo", Group: "demo"}})
	require.NoError(t, err)
	gw, err := gateway.New(gnc, gateway.Config{
		Catalog: cat, Logger: quiet, ShutdownGrace: 2 * time.Second, RequireKeys: true,
		ConsoleSampleInterval: 100 * time.Millisecond,
		APIKeys: []gateway.KeyRecord{
			{Hash: gateway.HashKey("sk-acme"), Tenant: "acme", Name: "acme"},
			{Hash: gateway.HashKey("sk-admin"), Tenant: "acme", Name: "admin", Admin: true},
		},
	})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	gctx, stopGateway := context.WithCancel(context.Background())
	gdone := make(chan error, 1)
	go func() { gdone <- gw.Serve(gctx, ln) }()
	var stopOnce sync.Once
	stopGW := func() { stopOnce.Do(func() { stopGateway(); require.NoError(t, <-gdone) }) }
	t.Cleanup(stopGW)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := func(method, path, key, contentType string, body io.Reader) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, url+path, body)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	var view struct {
		ID, Status   string
		OutputFileID string `json:"output_file_id"`
	}
	decode := func(b []byte) {
		t.Helper()
		view.ID, view.Status, view.OutputFileID = "", "", ""
		require.NoError(t, json.Unmarshal(b, &view), "%s", b)
	}
	chat := `{"model":"demo","messages":[{"role":"user","content":"hi"}]}`

	status, body := call(http.MethodPost, "/v1/chat/completions", "sk-acme", "application/json", strings.NewReader(chat))
	require.Equal(t, http.StatusOK, status, "chat completion: %s (violations %v)", body, gperm.list())
	status, body = call(http.MethodPost, "/v1/chat/completions", "sk-acme", "application/json",
		strings.NewReader(`{"model":"demo","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), "[DONE]")

	// An async job.
	status, body = call(http.MethodPost, "/v1/jobs", "sk-acme", "application/json", strings.NewReader(chat))
	require.Less(t, status, 300, "async job: %s (violations %v)", body, gperm.list())
	decode(body)
	job := view.ID
	require.Eventually(t, func() bool {
		_, b := call(http.MethodGet, "/v1/jobs/"+job, "sk-acme", "", nil)
		decode(b)
		return view.Status == "succeeded"
	}, 20*time.Second, 50*time.Millisecond, "job %s: %s (violations %v)", job, view.Status, gperm.list())
	status, body = call(http.MethodGet, "/v1/webhooks/secret", "sk-acme", "", nil)
	require.Equal(t, http.StatusOK, status, "webhook secret: %s (violations %v)", body, gperm.list())

	// A batch of two lines, from an uploaded file to its output file.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	require.NoError(t, mw.WriteField("purpose", "batch"))
	fw, err := mw.CreateFormFile("file", "input.jsonl")
	require.NoError(t, err)
	for _, id := range []string{"l1", "l2"} {
		_, _ = io.WriteString(fw, `{"custom_id":"`+id+`","method":"POST","url":"/v1/chat/completions","body":`+chat+"}\n")
	}
	require.NoError(t, mw.Close())
	status, body = call(http.MethodPost, "/v1/files", "sk-acme", mw.FormDataContentType(), &form)
	require.Equal(t, http.StatusOK, status, "file upload: %s (violations %v)", body, gperm.list())
	decode(body)
	status, body = call(http.MethodPost, "/v1/batches", "sk-acme", "application/json",
		strings.NewReader(`{"input_file_id":"`+view.ID+`","endpoint":"/v1/chat/completions","completion_window":"24h"}`))
	require.Equal(t, http.StatusOK, status, "batch: %s (violations %v)", body, gperm.list())
	decode(body)
	batch := view.ID
	require.Eventually(t, func() bool {
		_, b := call(http.MethodGet, "/v1/batches/"+batch, "sk-acme", "", nil)
		decode(b)
		return view.Status == "completed"
	}, 30*time.Second, 50*time.Millisecond, "batch %s: %s (violations %v)", batch, view.Status, gperm.list())
	status, body = call(http.MethodGet, "/v1/files/"+view.OutputFileID+"/content", "sk-acme", "", nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 2, strings.Count(strings.TrimSpace(string(body)), "\n")+1, "%s", body)

	// The operator endpoints, through an admin key.
	status, body = call(http.MethodGet, "/admin/status", "sk-admin", "", nil)
	require.Equal(t, http.StatusOK, status, "admin status: %s (violations %v)", body, gperm.list())
	status, body = call(http.MethodGet, "/admin/keys", "sk-admin", "", nil)
	require.Equal(t, http.StatusOK, status, "admin keys: %s (violations %v)", body, gperm.list())

	// Let the console sample a few times, then stop everything.
	time.Sleep(500 * time.Millisecond) // the sampler's own interval; nothing to wait for
	stopGW()
	require.NoError(t, gnc.Flush())
	time.Sleep(200 * time.Millisecond) // violations arrive asynchronously
	require.Empty(t, gperm.list(), "the gateway needed subjects permissions.conf does not allow")
	require.Empty(t, wperm.list(), "the worker needed subjects permissions.conf does not allow")
}
