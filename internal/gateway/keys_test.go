package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/gateway"
)

func TestNoKeysServesTheAnonymousTenant(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	c := f.openai(option.WithAPIKey("anything"))
	_, err := c.Chat.Completions.New(ctxT(t, 10*time.Second), openai.ChatCompletionNewParams{Model: "demo", Messages: userMsg("x")})
	require.NoError(t, err)
	st, _, _ := post(t, f.gw.URL+"/v1/chat/completions", `{"model":"demo","messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 200, st, "no key at all is fine too")
	require.Equal(t, 403, getJSON(t, f.gw.URL+"/admin/status", nil), "operator endpoints need an admin key")
}

func TestKeysFromTheModelFile(t *testing.T) {
	t.Parallel()
	const key, admin = "sk-model-file-key", "sk-admin"
	f := newFleet(t, fleetOpts{gateway: func(c *gatewayConfig) {
		c.APIKeys = []gateway.KeyRecord{{Hash: gateway.HashKey(key), Name: "app"}, {Hash: gateway.HashKey(admin), Admin: true}}
	}})
	ctx := ctxT(t, 10*time.Second)
	body := `{"model":"demo","messages":[{"role":"user","content":"x"}]}`
	url := f.gw.URL + "/v1/chat/completions"

	st, _, v := post(t, url, body)
	require.Equal(t, 401, st)
	require.Equal(t, "invalid_api_key", errField(v, "code"))
	st, _, v = post(t, url, body, "Authorization", "Bearer sk-wrong-key-1234")
	require.Equal(t, 401, st)
	require.Contains(t, errField(v, "message"), "sk-***1234", "the key is shown redacted")
	st, _, _ = post(t, url, body, "Authorization", "Bearer "+key)
	require.Equal(t, 200, st)

	// The SDKs see their own authentication errors.
	oc := f.openai(option.WithAPIKey("sk-unknown"))
	_, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "demo", Messages: userMsg("x")})
	require.Equal(t, 401, apiError(t, err).StatusCode)
	ac := f.anthropic(aoption.WithAPIKey("sk-unknown"))
	_, err = ac.Messages.New(ctx, anthropic.MessageNewParams{Model: "demo", MaxTokens: 5, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("x"))}})
	var ae *anthropic.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 401, ae.StatusCode)
	require.Contains(t, ae.RawJSON(), "authentication_error")
	ac = f.anthropic(aoption.WithAPIKey(key))
	_, err = ac.Messages.New(ctx, anthropic.MessageNewParams{Model: "demo", MaxTokens: 5, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("x"))}})
	require.NoError(t, err, "x-api-key works")

	req, _ := http.NewRequest(http.MethodGet, f.gw.URL+"/admin/status", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 403, resp.StatusCode, "not an admin key")
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
}

func TestStoredKeysTakeEffectAndRevoke(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 20*time.Second)
	url := f.gw.URL + "/v1/chat/completions"
	body := `{"model":"demo","messages":[{"role":"user","content":"x"}]}`
	kv, err := gateway.KeysBucket(ctx, f.js, 1)
	require.NoError(t, err)

	key, rec, err := gateway.CreateKey(ctx, kv, "", "ci", false, time.Now())
	require.NoError(t, err)
	require.Equal(t, gateway.HashKey(key), rec.Hash)
	// The first key locks the gateway at once.
	eventually(t, 5*time.Second, func() bool { st, _, _ := post(t, url, body); return st == 401 }, "a key is now required")
	st, _, _ := post(t, url, body, "Authorization", "Bearer "+key)
	require.Equal(t, 200, st)

	list, err := gateway.ListKeys(ctx, kv)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.NotContains(t, list[0].Hint, key[6:len(key)-4], "only a hint of the key is kept")
	_, err = gateway.RevokeKey(ctx, kv, rec.ID())
	require.NoError(t, err)
	eventually(t, 5*time.Second, func() bool {
		st, _, _ := post(t, url, body, "Authorization", "Bearer "+key)
		return st != 401
	}, "no key left: open again")
}

func TestRequireKeysWithNoKeyRefusesAll(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{gateway: func(c *gatewayConfig) { c.RequireKeys = true }})
	st, _, _ := post(t, f.gw.URL+"/v1/chat/completions", `{"model":"demo","messages":[{"role":"user","content":"x"}]}`, "Authorization", "Bearer sk-x")
	require.Equal(t, 401, st)
}
