package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"
)

// post sends a raw JSON request and decodes the JSON answer.
func post(t *testing.T, url, body string, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var v map[string]any
	if len(b) > 0 && b[0] == '{' {
		require.NoError(t, json.Unmarshal(b, &v), string(b))
	}
	return resp.StatusCode, resp.Header, v
}

func errField(v map[string]any, k string) any {
	e, _ := v["error"].(map[string]any)
	return e[k]
}

func TestOpenAIUnsupportedFieldsAreRefusedByName(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	url := f.gw.URL + "/v1/chat/completions"
	for _, tc := range []struct {
		extra, param, code string
	}{
		{`"n":2`, "n", "unsupported_value"},
		{`"logprobs":true`, "logprobs", "unsupported_parameter"},
		{`"top_logprobs":3`, "top_logprobs", "unsupported_parameter"},
		{`"logit_bias":{"50256":-100}`, "logit_bias", "unsupported_parameter"},
		{`"presence_penalty":0.5`, "presence_penalty", "unsupported_parameter"},
		{`"parallel_tool_calls":false`, "parallel_tool_calls", "unsupported_value"},
		{`"functions":[{"name":"f"}]`, "functions", "unsupported_parameter"},
		{`"audio":{"voice":"alloy"}`, "audio", "unsupported_parameter"},
		{`"modalities":["text","audio"]`, "modalities", "unsupported_value"},
	} {
		st, _, v := post(t, url, `{"model":"demo","messages":[{"role":"user","content":"hi"}],`+tc.extra+`}`)
		require.Equal(t, 400, st, tc.extra)
		require.Equal(t, tc.param, errField(v, "param"), tc.extra)
		require.Equal(t, tc.code, errField(v, "code"), tc.extra)
		require.Equal(t, "invalid_request_error", errField(v, "type"), tc.extra)
		require.Contains(t, errField(v, "message"), tc.param, tc.extra)
	}
	// Defaults that client libraries send are accepted.
	st, _, v := post(t, url, `{"model":"demo","messages":[{"role":"user","content":"hi"}],"n":1,"presence_penalty":0,"frequency_penalty":0,"logprobs":false,"parallel_tool_calls":true,"user":"u1"}`)
	require.Equal(t, 200, st, v)

	// Through the SDK: n=2 is an *openai.Error naming n.
	c := f.openai()
	_, err := c.Chat.Completions.New(ctxT(t, 10*time.Second), openai.ChatCompletionNewParams{Model: "demo", Messages: userMsg("x"), N: openai.Int(2)})
	e := apiError(t, err)
	require.Equal(t, 400, e.StatusCode)
	require.Equal(t, "n", e.Param)
}

func TestOpenAIErrorShapes(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	url := f.gw.URL + "/v1/chat/completions"
	for _, tc := range []struct {
		model, typ, code string
		status           int
	}{
		{"no-such-model", "invalid_request_error", "model_not_found", 404},
		{"err-rate-limited", "requests", "rate_limit_exceeded", 429},
		{"err-context-window-exceeded", "invalid_request_error", "context_length_exceeded", 400},
		{"err-content-policy", "invalid_request_error", "content_policy_violation", 400},
		{"err-auth", "server_error", "upstream_auth_failed", 502},
		{"err-unavailable", "server_error", "provider_unavailable", 503},
		{"err-timeout", "server_error", "timeout", 504},
		{"err-bad-request", "invalid_request_error", "invalid_request", 400},
	} {
		for _, stream := range []string{"false", "true"} {
			st, h, v := post(t, url, `{"model":"`+tc.model+`","stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`)
			require.Equal(t, tc.status, st, "%s stream=%s: %v", tc.model, stream, v)
			require.Equal(t, tc.typ, errField(v, "type"), tc.model)
			require.Equal(t, tc.code, errField(v, "code"), tc.model)
			require.Equal(t, "application/json", h.Get("Content-Type"), "a failure before the first token is an HTTP error, not a stream")
			if tc.status == 429 {
				require.NotEmpty(t, h.Get("Retry-After"))
			}
			if tc.code == "upstream_auth_failed" {
				require.Equal(t, "false", h.Get("x-should-retry"), "the SDK must not retry the operator's bad key")
			}
		}
	}
	// Through the SDK.
	c := f.openai()
	_, err := c.Chat.Completions.New(ctxT(t, 10*time.Second), openai.ChatCompletionNewParams{Model: "gpt-5-nope", Messages: userMsg("x")})
	e := apiError(t, err)
	require.Equal(t, 404, e.StatusCode)
	require.Equal(t, "model_not_found", e.Code)
}

// TestRetryAfterIsTheProviders: a 429 whose provider said how long to wait
// (1.5 s) carries that wait, through the result's retry_after_ms:
// retry-after-ms exact and Retry-After in whole seconds rounded up, on
// both vendors' routes, streamed or not; without a hint it stays 1 s.
func TestRetryAfterIsTheProviders(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	hinted := func(what string, h http.Header) {
		t.Helper()
		ms, err := strconv.Atoi(h.Get("retry-after-ms"))
		require.NoError(t, err, "%s: retry-after-ms %q", what, h.Get("retry-after-ms"))
		// The deployment's own Retry-After, or what is left of it when the
		// router waited it out for this request and was refused again.
		require.True(t, ms > 0 && ms <= int(providerRetryAfter.Milliseconds()), "%s: retry-after-ms %d", what, ms)
		require.Equal(t, strconv.Itoa((ms+999)/1000), h.Get("Retry-After"), what)
	}
	for _, stream := range []string{"false", "true"} {
		st, h, v := post(t, f.gw.URL+"/v1/chat/completions", `{"model":"`+errRateLimitedWait+`","stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`)
		require.Equal(t, 429, st, v)
		hinted("openai stream="+stream, h)
	}
	st, h, v := post(t, f.gw.URL+"/v1/messages", `{"model":"`+errRateLimitedWait+`","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 429, st, v)
	hinted("anthropic", h)
	// The stored result has the hint, as on the wire.
	st, _, v = post(t, f.gw.URL+"/v1/chat/completions", `{"model":"`+errRateLimitedWait+`","messages":[{"role":"user","content":"hi"}]}`, "Idempotency-Key", "wait-1")
	require.Equal(t, 429, st, v)
	r, err := f.client.StoredResult(ctxT(t, 10*time.Second), f.client.Subjects().Reply("wait-1"))
	require.NoError(t, err)
	require.NotNil(t, r)
	require.Equal(t, "rate_limited", string(r.Error.Code))
	require.Positive(t, r.Error.RetryAfterMS)
	require.LessOrEqual(t, r.Error.RetryAfterMS, providerRetryAfter.Milliseconds())

	st, h, _ = post(t, f.gw.URL+"/v1/chat/completions", `{"model":"err-rate-limited","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 429, st)
	require.Equal(t, "1", h.Get("Retry-After"), "no hint: one second")
	st, h, _ = post(t, f.gw.URL+"/v1/chat/completions", `{"model":"err-unavailable","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 503, st)
	require.Empty(t, h.Get("Retry-After"), "no hint on a 503: none")
}

func TestMalformedAndOversizedBodies(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{gateway: func(c *gatewayConfig) { c.MaxBodyBytes = 1 << 10 }})
	url := f.gw.URL + "/v1/chat/completions"
	st, _, v := post(t, url, `{"model":"demo",`)
	require.Equal(t, 400, st)
	require.Contains(t, errField(v, "message"), "could not parse the JSON body")
	st, _, v = post(t, url, `{"model":"demo","messages":"not an array"}`)
	require.Equal(t, 400, st, v)
	st, _, v = post(t, url, `{"model":"demo","messages":[{"role":"user","content":"`+string(bytes.Repeat([]byte("x"), 2<<10))+`"}]}`)
	require.Equal(t, 413, st, v)
	require.Equal(t, "request_too_large", errField(v, "code"))
	st, _, v = post(t, f.gw.URL+"/v1/nothing", `{}`)
	require.Equal(t, 404, st, v)
}
