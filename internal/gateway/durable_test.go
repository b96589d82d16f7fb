package gateway_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"
	sse "github.com/tmaxmax/go-sse"

	"github.com/switchyard/switchyard/pkg/bus"
)

// sseFrame is one event as a client reads it.
type sseFrame struct{ id, typ, data string }

// openStream POSTs a streaming request and returns its events as they come.
func openStream(t *testing.T, ctx context.Context, url, body string, hdr ...string) (*http.Response, func(func(sseFrame) bool)) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp, func(yield func(sseFrame) bool) {
		for ev, err := range sse.Read(resp.Body, nil) {
			if err != nil {
				return
			}
			if !yield(sseFrame{id: ev.LastEventID, typ: ev.Type, data: ev.Data}) {
				return
			}
		}
	}
}

const slowBody = `{"model":"slow","stream":true,"messages":[{"role":"user","content":"a long story"}]}`

func TestIdempotencyKeyReattachesToTheSameJob(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 30*time.Second)
	c := f.openai(option.WithHeader("Idempotency-Key", "order-42"))
	params := openai.ChatCompletionNewParams{Model: "slow", Messages: userMsg("a long story")}

	// The first attempt drops its connection after three chunks.
	cctx, drop := context.WithCancel(ctx)
	s := c.Chat.Completions.NewStreaming(cctx, params)
	for n := 0; n < 3 && s.Next(); n++ {
	}
	drop()
	_ = s.Close()

	// The retry re-attaches: the whole answer, from the first token.
	s = c.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	require.NoError(t, s.Err())
	text := acc.Choices[0].Message.Content
	require.Len(t, strings.Fields(text), 30)

	// And once it is finished, a whole request with the key gets it too.
	whole, err := c.Chat.Completions.New(ctx, params)
	require.NoError(t, err)
	require.Equal(t, text, whole.Choices[0].Message.Content)
	require.EqualValues(t, 1, f.mocks["slow"].Calls(), "one provider call for three requests")

	// The job was not cancelled by the dropped connection.
	r, err := f.client.StoredResult(ctx, f.client.Subjects().Reply("order-42"))
	require.NoError(t, err)
	require.Equal(t, bus.StatusOK, r.Status)
}

func TestLastEventIDResumesWithoutLossOrRepeat(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 30*time.Second)
	url := f.gw.URL + "/v1/chat/completions"

	cctx, drop := context.WithCancel(ctx)
	_, frames := openStream(t, cctx, url, slowBody, "Idempotency-Key", "resume-1")
	var got []sseFrame
	for fr := range frames {
		got = append(got, fr)
		if len(got) == 7 {
			break
		}
	}
	drop()
	require.Len(t, got, 7)
	last := got[len(got)-1].id

	_, frames = openStream(t, ctx, url, slowBody, "Idempotency-Key", "resume-1", "Last-Event-ID", last)
	for fr := range frames {
		got = append(got, fr)
	}
	// role, 30 content deltas, finish, [DONE]: numbered 1..33 without a gap
	// or a repeat.
	require.Len(t, got, 33)
	var text strings.Builder
	for i, fr := range got {
		require.Equal(t, strconv.Itoa(i+1), fr.id)
		if fr.data != "[DONE]" {
			var ch openai.ChatCompletionChunk
			require.NoError(t, ch.UnmarshalJSON([]byte(fr.data)))
			if len(ch.Choices) > 0 {
				text.WriteString(ch.Choices[0].Delta.Content)
			}
		}
	}
	require.Equal(t, "[DONE]", got[32].data)
	require.Len(t, strings.Fields(text.String()), 30)
	require.EqualValues(t, 1, f.mocks["slow"].Calls())

	// Resuming after the end gets nothing more; resuming from 0 replays
	// the whole stream byte for byte.
	_, frames = openStream(t, ctx, url, slowBody, "Idempotency-Key", "resume-1", "Last-Event-ID", "33")
	n := 0
	for range frames {
		n++
	}
	require.Zero(t, n)
}

func TestDisconnectWithoutKeyCancelsTheJob(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{slow: mockSlow(200, 20*time.Millisecond)})
	ctx := ctxT(t, 30*time.Second)
	cctx, drop := context.WithCancel(ctx)
	resp, frames := openStream(t, cctx, f.gw.URL+"/v1/chat/completions", slowBody)
	jobID := resp.Header.Get("X-Request-Id")
	require.NotEmpty(t, jobID)
	n := 0
	for range frames {
		if n++; n == 3 {
			break
		}
	}
	drop()
	var r *bus.Result
	eventually(t, 10*time.Second, func() bool {
		r, _ = f.client.StoredResult(ctx, f.client.Subjects().Reply(jobID))
		return r != nil
	}, "the abandoned job ends")
	require.Equal(t, bus.StatusError, r.Status)
	require.Equal(t, bus.CodeCancelled, r.Error.Code)
}

func TestModelsListsGroupsAndAliases(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 10*time.Second)
	c := f.openai()
	page, err := c.Models.List(ctx)
	require.NoError(t, err)
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	require.Equal(t, []string{"demo", "tools", "json", "slow", "fail", "gpt-4o-mini", "claude-haiku-4-5"}, ids)
	m, err := c.Models.Get(ctx, "secret-alias")
	require.NoError(t, err, "a hidden alias resolves")
	require.Equal(t, "secret-alias", m.ID)
	_, err = c.Models.Get(ctx, "nope")
	require.Equal(t, 404, apiError(t, err).StatusCode)

	a := f.anthropic()
	ap, err := a.Models.List(ctx, anthropicModelListParams())
	require.NoError(t, err)
	require.Len(t, ap.Data, 7)
	require.Equal(t, "demo", ap.Data[0].ID)
}

// An Idempotency-Key reused with other parameters is refused with 422, never
// answered the first request's result; with the same parameters it is the
// same job.
func TestIdempotencyKeyReusedWithAnotherBodyIs422(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	a := `{"model":"demo","messages":[{"role":"user","content":"first"}]}`
	b := `{"model":"demo","messages":[{"role":"user","content":"second"}]}`
	for _, path := range []string{"/v1/chat/completions", "/v1/jobs"} {
		key := "reuse-" + strings.ReplaceAll(path, "/", "-")
		st, _, first := post(t, f.gw.URL+path, a, "Idempotency-Key", key)
		require.Contains(t, []int{200, 202}, st, first)
		if path == "/v1/jobs" {
			waitJob(t, f, first["id"].(string), func(v jobView) bool { return v.Status == "succeeded" })
		}
		st, _, v := post(t, f.gw.URL+path, b, "Idempotency-Key", key)
		require.Equal(t, http.StatusUnprocessableEntity, st, "%s: %v", path, v)
		require.Equal(t, "idempotency_key_reused", errField(v, "code"))
		st, _, again := post(t, f.gw.URL+path, a, "Idempotency-Key", key)
		require.Contains(t, []int{200, 202}, st, again)
		require.Equal(t, first["id"], again["id"], path)
	}
	require.EqualValues(t, 2, f.mocks["demo"].Calls(), "one provider call per key")
}
