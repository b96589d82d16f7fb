package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// jobRecord is an async job as the gateway keeps it in BucketJobs.
type jobRecord struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant,omitempty"`
	Model     string    `json:"model"`
	Group     string    `json:"group"`
	CreatedAt time.Time `json:"created_at"`
	Webhook   *hookRec  `json:"webhook,omitempty"`
	// Digest is of the request and webhook that made the job, so that an
	// Idempotency-Key reused with other parameters is refused.
	Digest string `json:"digest,omitempty"`
}

// jobDigest digests what a POST /v1/jobs asks for.
func jobDigest(req *bus.Request, hook string) string {
	b, _ := json.Marshal(struct {
		Req  *bus.Request `json:"req"`
		Hook string       `json:"hook"`
	}{req, hook}) // wire type and a string
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// hookRec is a job's webhook and the state of its delivery.
type hookRec struct {
	URL         string     `json:"url"`
	Status      string     `json:"status"` // pending | delivered | failed
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// Webhook delivery states.
const (
	hookPending   = "pending"
	hookDelivered = "delivered"
	hookFailed    = "failed"
)

// asyncJobPrefix starts every async job's id, so that the webhook consumer
// can pass over the results of other jobs without a lookup.
const asyncJobPrefix = "job_"

// jobRequest is POST /v1/jobs: a chat completions request and an optional
// webhook.
type jobRequest struct {
	chatRequest
	Webhook json.RawMessage `json:"webhook"`
}

// webhookURL reads "webhook": "https://..." or {"url": "https://..."}.
func (j *jobRequest) webhookURL() (string, *apiError) {
	if !isSet(j.Webhook) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(j.Webhook, &s); err != nil {
		var o struct {
			URL string `json:"url"`
		}
		if err := json.Unmarshal(j.Webhook, &o); err != nil {
			return "", invalidParam("webhook", "", "webhook: want a URL or {\"url\": ...}")
		}
		s = o.URL
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", invalidParam("webhook", "", "webhook: %q is not an http(s) URL", s)
	}
	return s, nil
}

// asyncJobID is the id of an async job: the caller's Idempotency-Key, when
// it sent one, so that a retried POST is the same job.
func asyncJobID(r *http.Request) string {
	k := jobKey(r)
	if k == "" {
		return asyncJobPrefix + uuid.Must(uuid.NewV7()).String()
	}
	id := asyncJobPrefix + k
	if !bus.ValidJobID(id) {
		id = asyncJobPrefix + hashKey(k)
	}
	return id
}

// jobView is the job object of GET /v1/jobs/{id}.
type jobView struct {
	ID        string               `json:"id"`
	Object    string               `json:"object"`
	Model     string               `json:"model"`
	Status    string               `json:"status"` // queued | in_progress | succeeded | failed | cancelled
	CreatedAt int64                `json:"created_at"`
	Webhook   *hookRec             `json:"webhook,omitempty"`
	Result    *bus.Result          `json:"result,omitempty"`
	Response  *bus.ChatCompletion  `json:"response,omitempty"`
	Error     *bus.OpenAIErrorBody `json:"error,omitempty"`
}

func (g *Gateway) viewJob(rec *jobRecord, res *bus.Result) *jobView {
	v := &jobView{ID: rec.ID, Object: "job", Model: rec.Model, Status: "queued", CreatedAt: rec.CreatedAt.Unix(), Webhook: rec.Webhook, Result: res}
	switch {
	case res == nil:
	case res.Status == bus.StatusOK:
		v.Status = "succeeded"
		v.Response = bus.OpenAIChatCompletion(res, rec.Model, rec.CreatedAt.Unix())
	default:
		v.Status = "failed"
		if res.Error != nil && res.Error.Code == bus.CodeCancelled {
			v.Status = "cancelled"
		}
		_, v.Error = openAIBody(resultError(res))
	}
	return v
}

func (g *Gateway) createJob(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	var in jobRequest
	group, ok := g.readChat(w, r, &in, &in.chatRequest)
	if !ok {
		return
	}
	hook, e := in.webhookURL()
	if e != nil {
		writeOpenAIError(w, e)
		return
	}
	if e := withPriority(r, &in.Request); e != nil {
		writeOpenAIError(w, e)
		return
	}
	ctx := r.Context()
	req := in.job()
	stream := true // the events feed GET /v1/jobs/{id}/events
	req.Stream = &stream
	honourNoCache(r, req)
	rec := &jobRecord{ID: asyncJobID(r), Tenant: id.Tenant, Model: in.Model, Group: group, CreatedAt: g.now().UTC(), Digest: jobDigest(req, hook)}
	if hook != "" {
		rec.Webhook = &hookRec{URL: hook, Status: hookPending}
		// The delivery consumer must exist before the job can end.
		if err := g.hooks.ensure(ctx); err != nil {
			writeOpenAIError(w, busError(err))
			return
		}
	}
	kv, err := g.store.kv(ctx, BucketJobs)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	b, _ := json.Marshal(rec) // plain struct
	// The record goes first: a job whose result arrives has a record.
	if _, err := kv.Create(ctx, storeKey(id.Tenant, rec.ID), b); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			writeOpenAIError(w, busError(err))
			return
		}
		// A retried POST (same Idempotency-Key): the same job, if it asks
		// for the same.
		if old, _, err := g.jobRecord(ctx, id.Tenant, rec.ID); err == nil && old != nil {
			if old.Digest != "" && old.Digest != rec.Digest {
				writeOpenAIError(w, idempotencyMismatch())
				return
			}
			rec = old
		}
	}
	req.ID = rec.ID
	job, err := id.client.Publish(ctx, group, req)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	_ = job.Close()
	w.Header().Set("Location", "/v1/jobs/"+rec.ID)
	writeJSON(w, http.StatusAccepted, g.viewJob(rec, nil))
}

// jobRecord reads a tenant's async job and its revision; (nil, 0, nil) when
// the tenant has no such job.
func (g *Gateway) jobRecord(ctx context.Context, tenant, jobID string) (*jobRecord, uint64, error) {
	if !strings.HasPrefix(jobID, asyncJobPrefix) || !bus.ValidJobID(jobID) {
		return nil, 0, nil
	}
	kv, err := g.store.kv(ctx, BucketJobs)
	if err != nil {
		return nil, 0, err
	}
	e, err := kv.Get(ctx, storeKey(tenant, jobID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var rec jobRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, 0, err
	}
	return &rec, e.Revision(), nil
}

// lookupJob answers 404 for a job the tenant does not have.
func (g *Gateway) lookupJob(w http.ResponseWriter, r *http.Request) (*identity, *jobRecord) {
	id := identityOf(r.Context())
	rec, _, err := g.jobRecord(r.Context(), id.Tenant, r.PathValue("id"))
	if err != nil {
		writeOpenAIError(w, busError(err))
		return nil, nil
	}
	if rec == nil {
		e := newError(bus.CodeInvalidRequest, "No job found with id '%s'.", r.PathValue("id"))
		e.status, e.param = http.StatusNotFound, "id"
		writeOpenAIError(w, e)
		return nil, nil
	}
	return id, rec
}

func (g *Gateway) getJob(w http.ResponseWriter, r *http.Request) {
	id, rec := g.lookupJob(w, r)
	if rec == nil {
		return
	}
	res, err := id.client.StoredResult(r.Context(), id.client.Subjects().Reply(rec.ID))
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	v := g.viewJob(rec, res)
	if res == nil {
		// in_progress once a worker took it up: its first event is stored
		// (durable events; without them a running job reads queued).
		started, err := id.client.Started(r.Context(), rec.ID)
		if err != nil {
			writeOpenAIError(w, busError(err))
			return
		}
		if started {
			v.Status = "in_progress"
		}
	}
	writeJSON(w, http.StatusOK, v)
}

func (g *Gateway) deleteJob(w http.ResponseWriter, r *http.Request) {
	id, rec := g.lookupJob(w, r)
	if rec == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second) // Cancel flushes, which needs a deadline
	defer cancel()
	if err := id.client.Cancel(ctx, rec.ID); err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	v := g.viewJob(rec, nil)
	v.Status = "cancelling"
	writeJSON(w, http.StatusOK, v)
}

// jobEvents streams a job's Switchyard events as SSE (event: <type>, data:
// the event's JSON), and its result last (event: result). It replays the
// stored events from the first, so Last-Event-ID resumes.
func (g *Gateway) jobEvents(w http.ResponseWriter, r *http.Request) {
	id, rec := g.lookupJob(w, r)
	if rec == nil {
		return
	}
	ctx := r.Context()
	sw, err := newSSEWriter(w, r, g.cfg.WriteTimeout)
	if err != nil {
		writeOpenAIError(w, newError(bus.CodeInternal, "streaming is not supported on this connection"))
		return
	}
	res, err := id.client.StoredResult(ctx, id.client.Subjects().Reply(rec.ID))
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	a, e := g.rewatch(ctx, id.client, &attachment{jobID: rec.ID, keyed: true, existed: true}, res)
	if e != nil {
		writeOpenAIError(w, e)
		return
	}
	defer a.close()
	if sw.resuming() && !a.replay {
		e := newError(bus.CodeInvalidRequest, "Last-Event-ID needs the job's events stored (SWITCHYARD_DURABLE_EVENTS on the workers)")
		e.status = http.StatusConflict
		writeOpenAIError(w, e)
		return
	}
	g.streamJob(ctx, w, sw, a, &eventStream{}, writeOpenAIError)
}

// eventStream renders Switchyard's own events, unchanged; an error result
// is a result like any other.
type eventStream struct{ began bool }

func (s *eventStream) errorResults() {}

func (s *eventStream) started() bool { return s.began }

func (s *eventStream) event(e *bus.Event) ([]frame, *apiError) {
	s.began = true
	b, _ := json.Marshal(e) // wire type
	return []frame{{event: string(e.Type), data: b}}, nil
}

func (s *eventStream) result(r *bus.Result) ([]frame, *apiError) {
	s.began = true
	b, _ := json.Marshal(r) // wire type
	return []frame{{event: "result", data: b}}, nil
}

func (s *eventStream) failure(e *apiError) []frame {
	_, body := openAIBody(e)
	b, _ := json.Marshal(body) // plain struct
	return []frame{{event: "error", data: b}}
}
