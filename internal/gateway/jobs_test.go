package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/gateway"
)

// receiver is a webhook endpoint that records deliveries.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	calls []delivery
	fail  int // answer 500 to the first fail calls
}

type delivery struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, fail int) *receiver {
	r := &receiver{fail: fail}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.calls = append(r.calls, delivery{header: req.Header.Clone(), body: b})
		n := len(r.calls)
		r.mu.Unlock()
		if n <= r.fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.calls...)
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	if v != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}
	return resp.StatusCode
}

type jobView struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Webhook *struct {
		Status    string `json:"status"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
	} `json:"webhook"`
	Response *struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	} `json:"response"`
	Error *struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	} `json:"error"`
}

func createJob(t *testing.T, f *fleet, body string) jobView {
	t.Helper()
	st, h, v := post(t, f.gw.URL+"/v1/jobs", body)
	require.Equal(t, http.StatusAccepted, st, v)
	var j jobView
	b, _ := json.Marshal(v)
	require.NoError(t, json.Unmarshal(b, &j))
	require.Equal(t, "/v1/jobs/"+j.ID, h.Get("Location"))
	require.Equal(t, "queued", j.Status)
	return j
}

func waitJob(t *testing.T, f *fleet, id string, until func(jobView) bool) jobView {
	t.Helper()
	var j jobView
	eventually(t, 20*time.Second, func() bool {
		j = jobView{}
		return getJSON(t, f.gw.URL+"/v1/jobs/"+id, &j) == 200 && until(j)
	}, "job "+id)
	return j
}

func TestAsyncJobWebhookDeliveredOnceAfterGatewayRestart(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{slow: mockSlow(40, 25*time.Millisecond)})
	ctx := ctxT(t, 60*time.Second)
	recv := newReceiver(t, 0)
	j := createJob(t, f, `{"model":"slow","messages":[{"role":"user","content":"hi"}],"webhook":{"url":"`+recv.URL+`/hook"}}`)

	// The gateway goes away while the job runs, and the job ends while no
	// gateway runs at all.
	f.gw.stop()
	eventually(t, 20*time.Second, func() bool {
		r, _ := f.client.StoredResult(ctx, f.client.Subjects().Reply(j.ID))
		return r != nil
	}, "the job ends")
	require.Empty(t, recv.deliveries())

	// A new gateway process delivers it.
	f.gw = f.startGateway()
	var secret struct{ Secret string }
	require.Equal(t, 200, getJSON(t, f.gw.URL+"/v1/webhooks/secret", &secret))
	done := waitJob(t, f, j.ID, func(v jobView) bool { return v.Webhook != nil && v.Webhook.Status == "delivered" })
	require.Equal(t, 1, done.Webhook.Attempts)
	// Nothing is left to deliver: the consumer has no message pending or
	// unacknowledged, so no second call can come.
	eventually(t, 10*time.Second, func() bool {
		c, err := f.js.Consumer(ctx, "LLM_RESULTS", "gateway_webhooks")
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	}, "deliveries settled")
	ds := recv.deliveries()
	require.Len(t, ds, 1, "delivered exactly once")

	wh, err := standardwebhooks.NewWebhook(secret.Secret)
	require.NoError(t, err)
	require.NoError(t, wh.Verify(ds[0].body, ds[0].header), "a valid Standard Webhooks signature")
	require.Equal(t, "msg_"+j.ID, ds[0].header.Get("webhook-id"))
	var ev struct {
		Type string  `json:"type"`
		Data jobView `json:"data"`
	}
	require.NoError(t, json.Unmarshal(ds[0].body, &ev))
	require.Equal(t, "job.succeeded", ev.Type)
	require.Equal(t, j.ID, ev.Data.ID)
	require.NotEmpty(t, ev.Data.Response.Choices[0].Message.Content)

	// A forged body fails verification.
	require.Error(t, wh.Verify(append(ds[0].body, ' '), ds[0].header))
}

func TestWebhookRetriedUntil2xx(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{gateway: func(c *gatewayConfig) { gateway.SetWebhookRetryBase(c, 50*time.Millisecond) }})
	recv := newReceiver(t, 2)
	j := createJob(t, f, `{"model":"demo","messages":[{"role":"user","content":"hi"}],"webhook":"`+recv.URL+`"}`)
	done := waitJob(t, f, j.ID, func(v jobView) bool { return v.Webhook.Status == "delivered" })
	require.Equal(t, 3, done.Webhook.Attempts)
	ds := recv.deliveries()
	require.Len(t, ds, 3)
	for _, d := range ds {
		require.Equal(t, "msg_"+j.ID, d.header.Get("webhook-id"), "one webhook-id across retries")
	}
}

func TestWebhookToAPrivateAddressIsRefusedByDefault(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{gateway: func(c *gatewayConfig) {
		c.WebhookAllowPrivate = false
		gateway.SetWebhookRetryBase(c, 10*time.Millisecond)
	}})
	recv := newReceiver(t, 0)
	j := createJob(t, f, `{"model":"demo","messages":[{"role":"user","content":"hi"}],"webhook":"`+recv.URL+`"}`)
	done := waitJob(t, f, j.ID, func(v jobView) bool { return v.Webhook.Attempts >= 3 })
	require.Equal(t, "pending", done.Webhook.Status, "retried with backoff")
	require.Contains(t, done.Webhook.LastError, "is not public")
	require.Empty(t, recv.deliveries(), "127.0.0.1 is never called")
}

func TestAsyncJobLifecycle(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 30*time.Second)
	j := createJob(t, f, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	done := waitJob(t, f, j.ID, func(v jobView) bool { return v.Status == "succeeded" })
	require.NotEmpty(t, done.Response.Choices[0].Message.Content)

	// Its events replay as SSE, the result last; Last-Event-ID resumes.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.gw.URL+"/v1/jobs/"+j.ID+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	frames := readFrames(t, resp)
	require.Equal(t, "result", frames[len(frames)-1].typ)
	require.Equal(t, "start", frames[0].typ)
	req.Header.Set("Last-Event-ID", frames[len(frames)-2].id)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	rest := readFrames(t, resp)
	require.Len(t, rest, 1)
	require.Equal(t, frames[len(frames)-1], rest[0])

	// Unknown and other tenants' ids are 404.
	require.Equal(t, 404, getJSON(t, f.gw.URL+"/v1/jobs/job_nope", nil))

	// A running job is cancelled by DELETE.
	slow := createJob(t, f, `{"model":"slow","messages":[{"role":"user","content":"hi"}]}`)
	req, _ = http.NewRequestWithContext(ctx, http.MethodDelete, f.gw.URL+"/v1/jobs/"+slow.ID, nil)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, string(b))
	c := waitJob(t, f, slow.ID, func(v jobView) bool { return v.Status != "queued" && v.Status != "in_progress" })
	require.Equal(t, "cancelled", c.Status)
	require.Equal(t, "cancelled", c.Error.Error.Code)
}

func TestAsyncJobIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	body := `{"model":"demo","messages":[{"role":"user","content":"hi"}]}`
	_, _, a := post(t, f.gw.URL+"/v1/jobs", body, "Idempotency-Key", "k1")
	_, _, b := post(t, f.gw.URL+"/v1/jobs", body, "Idempotency-Key", "k1")
	require.Equal(t, a["id"], b["id"])
	require.Equal(t, "job_k1", a["id"])
	waitJob(t, f, "job_k1", func(v jobView) bool { return v.Status == "succeeded" })
	require.EqualValues(t, 1, f.mocks["demo"].Calls())
}

func readFrames(t *testing.T, resp *http.Response) []sseFrame {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var out []sseFrame
	_, frames := func() (*http.Response, func(func(sseFrame) bool)) {
		return resp, func(yield func(sseFrame) bool) {
			for ev, err := range sseRead(resp.Body) {
				if err != nil || !yield(sseFrame{id: ev.LastEventID, typ: ev.Type, data: ev.Data}) {
					return
				}
			}
		}
	}()
	for fr := range frames {
		out = append(out, fr)
	}
	return out
}

var _ = context.Background

// A job reads queued until a worker takes it up, then in_progress (its
// first event is stored) until it ends.
func TestAsyncJobQueuedThenInProgress(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{slow: mockSlow(200, 50*time.Millisecond)})
	j := createJob(t, f, `{"model":"slow","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, "queued", j.Status)
	waitJob(t, f, j.ID, func(v jobView) bool { return v.Status == "in_progress" })
	req, _ := http.NewRequest(http.MethodDelete, f.gw.URL+"/v1/jobs/"+j.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	done := waitJob(t, f, j.ID, func(v jobView) bool { return v.Status != "in_progress" })
	require.Equal(t, "cancelled", done.Status)
}

// The delivery consumer, deleted while a job with a webhook runs, is made
// again, and the webhook is delivered once.
func TestWebhookConsumerRecreatedAfterDelete(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{slow: mockSlow(100, 30*time.Millisecond)})
	ctx := ctxT(t, 60*time.Second)
	recv := newReceiver(t, 0)
	j := createJob(t, f, `{"model":"slow","messages":[{"role":"user","content":"hi"}],"webhook":"`+recv.URL+`/hook"}`)
	require.NoError(t, f.js.DeleteConsumer(ctx, "LLM_RESULTS", "gateway_webhooks"))
	done := waitJob(t, f, j.ID, func(v jobView) bool { return v.Webhook.Status != "pending" })
	require.Equal(t, "delivered", done.Webhook.Status)
	require.Len(t, recv.deliveries(), 1)
	_, err := f.js.Consumer(ctx, "LLM_RESULTS", "gateway_webhooks")
	require.NoError(t, err, "the consumer is back")
}
