package gateway_test

import (
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
