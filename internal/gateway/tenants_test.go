package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/gateway"
	"github.com/switchyard/switchyard/pkg/bus"
)

func getAs(t *testing.T, url, key string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if v != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}
	return resp.StatusCode
}

// A key's tenant decides where its jobs go (the tenant's namespace, never
// what the body says) and what it can see (its own jobs only).
func TestKeysMapToTenantNamespaces(t *testing.T) {
	t.Parallel()
	const acme, globex = "sk-acme", "sk-globex"
	f := newFleet(t, fleetOpts{gateway: func(c *gatewayConfig) {
		c.APIKeys = []gateway.KeyRecord{{Hash: gateway.HashKey(acme), Tenant: "acme"}, {Hash: gateway.HashKey(globex), Tenant: "globex"}}
	}})
	ctx := ctxT(t, 20*time.Second)
	// The tenants' request streams (the workers provision them for the
	// tenants of the model file).
	require.NoError(t, bus.Provision(ctx, f.js, bus.StreamsConfig{Tenants: []string{"acme", "globex"}}))
	sub, err := f.nc.SubscribeSync("llm.>")
	require.NoError(t, err)
	require.NoError(t, f.nc.Flush())

	body := `{"model":"demo","tenant":"globex","reply":"llm.t.globex.res.stolen","messages":[{"role":"user","content":"hi"}]}`
	st, h, v := post(t, f.gw.URL+"/v1/jobs", body, "Authorization", "Bearer "+acme)
	require.Equal(t, http.StatusAccepted, st, v)
	jobID := v["id"].(string)
	require.NotEmpty(t, h.Get("Location"))
	var m *struct{ subj string }
	for m == nil {
		msg, err := sub.NextMsgWithContext(ctx)
		require.NoError(t, err)
		if msg.Header.Get(bus.HeaderMsgID) == jobID {
			m = &struct{ subj string }{msg.Subject}
			var req bus.Request
			require.NoError(t, bus.Detect(msg.Header, msg.Data).Unmarshal(msg.Data, &req))
			require.Empty(t, req.Tenant, "the body's tenant is never passed on")
			require.Empty(t, req.Reply, "nor its reply subject")
		}
	}
	require.Equal(t, "llm.t.acme.req.demo", m.subj, "published in the key's tenant's namespace")

	// Only acme sees its job.
	require.Equal(t, 200, getAs(t, f.gw.URL+"/v1/jobs/"+jobID, acme, nil))
	require.Equal(t, 404, getAs(t, f.gw.URL+"/v1/jobs/"+jobID, globex, nil))
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodDelete, f.gw.URL+"/v1/jobs/"+jobID, nil)
	req.Header.Set("Authorization", "Bearer "+globex)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 404, resp.StatusCode, "nor cancel it")

	// Files too.
	ca, cg := f.openai(option.WithAPIKey(acme)), f.openai(option.WithAPIKey(globex))
	file, err := ca.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader("{}\n"), "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	require.NoError(t, err)
	_, err = cg.Files.Get(ctx, file.ID)
	require.Equal(t, 404, apiError(t, err).StatusCode)
	_, err = cg.Batches.New(ctx, openai.BatchNewParams{InputFileID: file.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	require.Equal(t, 404, apiError(t, err).StatusCode, "another tenant's file cannot feed a batch")
	list, err := cg.Files.List(ctx, openai.FileListParams{})
	require.NoError(t, err)
	require.Empty(t, list.Data)
}

// doAs sends a request with a tenant's key and returns the status and the
// JSON answer (nil when it is not a JSON object).
func doAs(t *testing.T, method, url, key, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

// Two tenants' jobs run end to end through the gateway on their own request
// streams (the worker serves both), and neither can see, follow, cancel or
// re-attach to the other's jobs, batches, files or results, not even by
// naming their ids.
func TestTwoTenantsJobsEndToEnd(t *testing.T) {
	t.Parallel()
	const acme, globex = "sk-acme", "sk-globex"
	f := newFleet(t, fleetOpts{tenants: []string{"acme", "globex"}, gateway: func(c *gatewayConfig) {
		c.APIKeys = []gateway.KeyRecord{{Hash: gateway.HashKey(acme), Tenant: "acme"}, {Hash: gateway.HashKey(globex), Tenant: "globex"}}
	}})
	ctx := ctxT(t, 90*time.Second)
	ca, cg := f.openai(option.WithAPIKey(acme)), f.openai(option.WithAPIKey(globex))
	tenantClient := func(name string) *bus.Client {
		c, err := bus.NewClient(f.nc, bus.WithTenant(name))
		require.NoError(t, err)
		return c
	}
	busA, busG := tenantClient("acme"), tenantClient("globex")

	// Chat completions run for both, whole and streamed.
	for _, c := range []openai.Client{ca, cg} {
		cc, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "demo", Messages: userMsg("hello")})
		require.NoError(t, err)
		require.NotEmpty(t, cc.Choices[0].Message.Content)
		s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "demo", Messages: userMsg("hello")})
		n := 0
		for s.Next() {
			n++
		}
		require.NoError(t, s.Err())
		require.Positive(t, n)
		require.NoError(t, s.Close())
	}
	require.EqualValues(t, 4, f.mocks["demo"].Calls())

	// The same Idempotency-Key is two jobs, one per tenant: globex does not
	// re-attach to acme's job (and so is not answered acme's result).
	_, err := ca.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "demo", Messages: userMsg("acme's question")}, option.WithHeader("Idempotency-Key", "shared-key"))
	require.NoError(t, err)
	_, err = cg.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "demo", Messages: userMsg("globex's question")}, option.WithHeader("Idempotency-Key", "shared-key"))
	require.NoError(t, err)
	require.EqualValues(t, 6, f.mocks["demo"].Calls(), "one provider call per tenant")

	// Async jobs: each tenant sees its own job under the same id.
	st, ja := doAs(t, http.MethodPost, f.gw.URL+"/v1/jobs", acme, `{"model":"demo","messages":[{"role":"user","content":"acme's secret"}]}`, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusAccepted, st, ja)
	jobID := ja["id"].(string)
	var done jobView
	eventually(t, 30*time.Second, func() bool {
		done = jobView{}
		return getAs(t, f.gw.URL+"/v1/jobs/"+jobID, acme, &done) == 200 && done.Status == "succeeded"
	}, "acme's job runs")
	stored, err := busA.StoredResult(ctx, busA.Subjects().Reply(jobID))
	require.NoError(t, err)
	require.NotNil(t, stored, "the result is in acme's namespace")
	require.Equal(t, stored.Text, done.Response.Choices[0].Message.Content)
	none, err := busG.StoredResult(ctx, busG.Subjects().Reply(jobID))
	require.NoError(t, err)
	require.Nil(t, none, "and not in globex's")

	for _, probe := range []struct{ method, path string }{
		{http.MethodGet, "/v1/jobs/" + jobID},
		{http.MethodGet, "/v1/jobs/" + jobID + "/events"},
		{http.MethodDelete, "/v1/jobs/" + jobID},
	} {
		st, v := doAs(t, probe.method, f.gw.URL+probe.path, globex, "")
		require.Equal(t, http.StatusNotFound, st, "%s %s as globex: %v", probe.method, probe.path, v)
	}
	// globex naming the same Idempotency-Key gets a job of its own.
	st, jg := doAs(t, http.MethodPost, f.gw.URL+"/v1/jobs", globex, `{"model":"demo","messages":[{"role":"user","content":"globex's question"}]}`, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusAccepted, st, jg)
	require.Equal(t, jobID, jg["id"])
	var mine jobView
	eventually(t, 30*time.Second, func() bool {
		mine = jobView{}
		return getAs(t, f.gw.URL+"/v1/jobs/"+jobID, globex, &mine) == 200 && mine.Status == "succeeded"
	}, "globex's job runs")
	own, err := busG.StoredResult(ctx, busG.Subjects().Reply(jobID))
	require.NoError(t, err)
	require.NotNil(t, own)
	require.Equal(t, own.Text, mine.Response.Choices[0].Message.Content)
	require.NotEqual(t, stored.Text, own.Text, "globex sees its own answer, not acme's")
	// acme's job was not cancelled by globex's DELETE.
	require.Equal(t, 200, getAs(t, f.gw.URL+"/v1/jobs/"+jobID, acme, &done))
	require.Equal(t, "succeeded", done.Status)

	// Batches and files: acme's are invisible to globex, by id too.
	file, err := ca.Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader(batchInput(3)), "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	require.NoError(t, err)
	b, err := ca.Batches.New(ctx, openai.BatchNewParams{InputFileID: file.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	require.NoError(t, err)
	eventually(t, 60*time.Second, func() bool {
		b, err = ca.Batches.Get(ctx, b.ID)
		return err == nil && b.Status == "completed"
	}, "acme's batch completes")
	require.EqualValues(t, 3, b.RequestCounts.Completed)
	_, err = cg.Batches.Get(ctx, b.ID)
	require.Equal(t, 404, apiError(t, err).StatusCode)
	_, err = cg.Batches.Cancel(ctx, b.ID)
	require.Equal(t, 404, apiError(t, err).StatusCode)
	bl, err := cg.Batches.List(ctx, openai.BatchListParams{})
	require.NoError(t, err)
	require.Empty(t, bl.Data)
	for _, id := range []string{file.ID, b.OutputFileID} {
		_, err = cg.Files.Get(ctx, id)
		require.Equal(t, 404, apiError(t, err).StatusCode, id)
		_, err = cg.Files.Content(ctx, id)
		require.Equal(t, 404, apiError(t, err).StatusCode, id)
		_, err = cg.Files.Delete(ctx, id)
		require.Equal(t, 404, apiError(t, err).StatusCode, id)
	}
	// acme still has them.
	resp, err := ca.Files.Content(ctx, b.OutputFileID)
	require.NoError(t, err)
	out := readLines(t, resp.Body)
	resp.Body.Close()
	require.Len(t, out, 3)
}
