package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// Job statuses of a listing: queued (in a request stream, not yet
// delivered), running (delivered, not yet acked), ok and error (a result is
// stored), dead (a dead letter).
const (
	StatusQueued  = "queued"
	StatusRunning = "running"
	StatusOK      = "ok"
	StatusError   = "error"
	StatusDead    = "dead"
)

// Statuses lists the job statuses, in a job's order of life.
var Statuses = []string{StatusQueued, StatusRunning, StatusOK, StatusError, StatusDead}

// MaxJobScan bounds the messages a job listing or lookup reads per stream.
const MaxJobScan = 50_000

// Jobs finds jobs in the request, results and dead-letter streams. It is
// safe for concurrent use.
type Jobs struct {
	js   jetstream.JetStream
	subj bus.Subjects
	dlq  *DeadLetters
	now  func() time.Time
}

// NewJobs returns the jobs of the deployment whose prefix subj names.
func NewJobs(js jetstream.JetStream, subj bus.Subjects) *Jobs {
	subj = subj.ForTenant("")
	return &Jobs{js: js, subj: subj, dlq: NewDeadLetters(js, subj), now: time.Now}
}

// Query selects jobs. The zero value lists the newest jobs of the last hour.
type Query struct {
	// ID finds one job by id (in every tenant in scope).
	ID string
	// Tenant, when set, keeps one tenant's jobs ("" the anonymous tenant's).
	Tenant *string
	Group  string
	Status string
	// Since and Until bound when the job was published (queued, running,
	// dead) or answered (ok, error). Since defaults to an hour ago.
	Since, Until time.Time
	// Limit bounds the jobs returned, newest first (default 50).
	Limit int
}

// Summary is one job of a listing.
type Summary struct {
	ID         string    `json:"id"`
	Tenant     string    `json:"tenant,omitempty"`
	Group      string    `json:"group"`
	Status     string    `json:"status"`
	Code       string    `json:"code,omitempty"`
	Time       time.Time `json:"time"`
	Deployment string    `json:"deployment,omitempty"`
	CostUSD    float64   `json:"cost_usd,omitempty"`
	Tokens     int       `json:"tokens,omitempty"`
	TTFTMS     int64     `json:"ttft_ms,omitempty"`
	TotalMS    int64     `json:"total_ms,omitempty"`
	// Seq is the message's sequence in its stream (a dead letter's is what
	// replay and purge take).
	Seq uint64 `json:"seq"`
}

// Page is the result of a listing.
type Page struct {
	Jobs []Summary `json:"jobs"`
	// Truncated is set when a stream had more matching messages than a
	// listing reads (MaxJobScan): narrow the time range.
	Truncated bool      `json:"truncated,omitempty"`
	Since     time.Time `json:"since"`
}

// Tenants returns the tenants that have a request stream ("" the anonymous
// one first): the tenants the workers provisioned from the model file.
func (j *Jobs) Tenants(ctx context.Context) ([]string, error) {
	return tenantsOf(ctx, j.js)
}

func tenantsOf(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	names := js.StreamNames(ctx)
	var out []string
	anon := false
	for n := range names.Name() {
		switch {
		case n == bus.StreamRequests:
			anon = true
		case strings.HasPrefix(n, bus.StreamRequests+"_"):
			if t := strings.TrimPrefix(n, bus.StreamRequests+"_"); bus.ValidTenant(t) {
				out = append(out, t)
			}
		}
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("ops: stream names: %w", err)
	}
	slices.Sort(out)
	if anon {
		out = append([]string{""}, out...)
	}
	return out, nil
}

func (j *Jobs) scope(ctx context.Context, tenant *string) ([]string, error) {
	if tenant != nil {
		return []string{*tenant}, nil
	}
	return j.Tenants(ctx)
}

// List returns the jobs q selects, newest first.
func (j *Jobs) List(ctx context.Context, q Query) (*Page, error) {
	now := j.now()
	if q.Since.IsZero() {
		q.Since = now.Add(-time.Hour)
	}
	limit := cmp.Or(q.Limit, 50)
	p := &Page{Since: q.Since}
	if q.ID != "" {
		job, err := j.Get(ctx, q.Tenant, q.ID)
		if errors.Is(err, ErrNotFound) {
			return p, nil
		}
		if err != nil {
			return nil, err
		}
		p.Jobs = []Summary{job.Summary()}
		return p, nil
	}
	tenants, err := j.scope(ctx, q.Tenant)
	if err != nil {
		return nil, err
	}
	keep := func(s Summary) bool {
		return (q.Group == "" || s.Group == q.Group) && (q.Status == "" || s.Status == q.Status) &&
			!s.Time.Before(q.Since) && (q.Until.IsZero() || !s.Time.After(q.Until))
	}
	var all []Summary
	add := func(s Summary) {
		if keep(s) {
			all = append(all, s)
		}
	}
	if q.Status == "" || q.Status == StatusQueued || q.Status == StatusRunning {
		for _, t := range tenants {
			trunc, err := j.queued(ctx, t, q.Group, func(s Summary, _ *jetstream.RawStreamMsg) bool { add(s); return true })
			if err != nil {
				return nil, err
			}
			p.Truncated = p.Truncated || trunc
		}
	}
	if q.Status == "" || q.Status == StatusOK || q.Status == StatusError {
		trunc, err := j.results(ctx, q, add)
		if err != nil {
			return nil, err
		}
		p.Truncated = p.Truncated || trunc
	}
	if q.Status == StatusDead {
		l, err := j.dlq.List(ctx, Filter{Group: q.Group, Tenant: q.Tenant, Limit: MaxScan})
		if err != nil && !errors.Is(err, ErrNoDLQ) {
			return nil, err
		}
		if l != nil {
			for _, dl := range l.Entries {
				add(dl.Summary())
			}
			p.Truncated = p.Truncated || l.Truncated
		}
	}
	slices.SortStableFunc(all, func(a, b Summary) int { return b.Time.Compare(a.Time) })
	p.Jobs = all[:min(limit, len(all))]
	return p, nil
}

// Summary is a dead letter as a job of a listing.
func (d *DeadLetter) Summary() Summary {
	return Summary{ID: d.JobID, Tenant: d.Tenant, Group: d.Group, Status: StatusDead, Code: d.Code, Time: d.Time, Seq: d.Seq}
}

// MaxQueueScan bounds the messages of a request stream that a listing or
// a lookup reads. A work-queue stream allows no consumer beside the
// workers' (their filters may not overlap), so its messages are read one
// by one, newest first.
const MaxQueueScan = 5_000

// queued passes the jobs in tenant's request stream (of group, when set)
// to fn, newest first, with their messages: queued, or running when their
// group's consumer delivered them already. It reports whether it stopped
// at MaxQueueScan with messages left.
func (j *Jobs) queued(ctx context.Context, tenant, group string, fn func(Summary, *jetstream.RawStreamMsg) bool) (bool, error) {
	ns := j.subj.ForTenant(tenant)
	s, err := j.js.Stream(ctx, ns.RequestStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return false, nil
	}
	// The last stream sequence each class consumer of a group delivered.
	type queue struct {
		group string
		class bus.Priority
	}
	delivered := map[queue]uint64{}
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		if g, p, ok := bus.ParseConsumerName(ci.Name); ok {
			delivered[queue{g, p}] = ci.Delivered.Stream
		}
	}
	if err := lister.Err(); err != nil {
		return false, err
	}
	read := 0
	for seq := st.LastSeq; seq >= st.FirstSeq && seq > 0; seq-- {
		if read == MaxQueueScan {
			return true, nil
		}
		read++
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // acked meanwhile, or a gap
		}
		if err != nil {
			return false, err
		}
		rs, ok := j.subj.ParseRequest(m.Subject)
		if !ok || (group != "" && rs.Group != group) {
			continue
		}
		status := StatusQueued
		if seq <= delivered[queue{rs.Group, rs.Priority}] {
			status = StatusRunning
		}
		id := bus.MsgJobID(m.Header)
		if id == "" {
			id = fmt.Sprintf("seq-%d", seq)
		}
		if !fn(Summary{ID: id, Tenant: tenant, Group: rs.Group, Status: status, Time: m.Time, Seq: seq}, m) {
			return false, nil
		}
	}
	return false, nil
}

// resultFilters are the results stream's subjects of the tenants in scope.
func (j *Jobs) resultFilters(tenant *string) []string {
	switch {
	case tenant == nil:
		return []string{j.subj.Results(), j.subj.TenantResults()}
	default:
		return []string{j.subj.ForTenant(*tenant).Results()}
	}
}

func (j *Jobs) results(ctx context.Context, q Query, fn func(Summary)) (bool, error) {
	s, err := j.js.Stream(ctx, bus.StreamResults)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	since := q.Since
	cfg := jetstream.ConsumerConfig{FilterSubjects: j.resultFilters(q.Tenant), DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since}
	return scan(ctx, s, cfg, MaxJobScan, func(m jetstream.Msg) bool {
		meta, err := m.Metadata()
		if err != nil {
			return true
		}
		if !q.Until.IsZero() && meta.Timestamp.After(q.Until) {
			return false
		}
		tenant, id, ok := j.subj.ParseResult(m.Subject())
		if !ok {
			return true
		}
		var r bus.Result
		if err := bus.Detect(m.Headers(), m.Data()).Unmarshal(m.Data(), &r); err != nil || r.ID != id {
			return true
		}
		sm := resultSummary(&r, tenant, meta.Timestamp)
		sm.Seq = meta.Sequence.Stream
		fn(sm)
		return true
	})
}

func resultSummary(r *bus.Result, tenant string, at time.Time) Summary {
	s := Summary{ID: r.ID, Tenant: tenant, Group: r.Group, Status: StatusOK, Time: at, Deployment: r.Deployment,
		CostUSD: r.CostUSD, TTFTMS: r.Timings.TTFTMS, TotalMS: r.Timings.TotalMS}
	if r.Status != bus.StatusOK {
		s.Status = StatusError
	}
	if r.Error != nil {
		s.Code = string(r.Error.Code)
	}
	if r.Usage != nil {
		s.Tokens = r.Usage.TotalTokens
	}
	return s
}

// Job is everything the fleet still knows about one job.
type Job struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant,omitempty"`
	Group  string `json:"group,omitempty"`
	// Status is the job's latest state (see the Status constants).
	Status string `json:"status"`
	// Result is the stored result, the latest when the job was replayed.
	Result     *bus.Result `json:"result,omitempty"`
	ResultTime time.Time   `json:"result_time,omitzero"`
	// Request is the request while a stream keeps it: queued or running
	// (the request stream), or dead-lettered (the dead-letter stream). A
	// request stream drops a job once it is answered.
	Request *Request `json:"request,omitempty"`
	// DeadLetters are the job's dead letters, newest first.
	DeadLetters []DeadLetter `json:"dead_letters,omitempty"`

	resultMsgID string // the stored result's Nats-Msg-Id
}

// Summary is the job as a line of a listing.
func (j *Job) Summary() Summary {
	s := Summary{ID: j.ID, Tenant: j.Tenant, Group: j.Group, Status: j.Status}
	switch {
	case j.Result != nil && (j.Status == StatusOK || j.Status == StatusError):
		s = resultSummary(j.Result, j.Tenant, j.ResultTime)
	case j.Request != nil:
		s.Time, s.Seq = j.Request.Time, j.Request.Seq
	case len(j.DeadLetters) > 0:
		s = j.DeadLetters[0].Summary()
	}
	return s
}

// Get returns the job id of tenant (nil: of whichever tenant has it; the
// anonymous tenant is looked at first). It returns ErrNotFound when no
// stream knows the job.
func (j *Jobs) Get(ctx context.Context, tenant *string, id string) (*Job, error) {
	if !bus.ValidJobID(id) {
		return nil, fmt.Errorf("%w: %q is not a job id (%s)", ErrNotFound, id, bus.JobIDRule)
	}
	tenants, err := j.scope(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var dead []DeadLetter
	if l, err := j.dlq.List(ctx, Filter{JobID: id, Tenant: tenant, Limit: 20}); err == nil {
		dead = l.Entries
	} else if !errors.Is(err, ErrNoDLQ) {
		return nil, err
	}
	for _, t := range tenants {
		job, err := j.get(ctx, t, id)
		if err != nil {
			return nil, err
		}
		for _, dl := range dead {
			if dl.Tenant == t {
				job.DeadLetters = append(job.DeadLetters, dl)
			}
		}
		if job.Result == nil && job.Request == nil && len(job.DeadLetters) == 0 {
			continue
		}
		job.Status = job.status()
		if job.Request == nil && len(job.DeadLetters) > 0 {
			if full, err := j.dlq.Get(ctx, job.DeadLetters[0].Seq); err == nil {
				job.Request = full.Request()
			}
		}
		return job, nil
	}
	return nil, fmt.Errorf("%w: job %s", ErrNotFound, id)
}

// status is the job's latest state: a run that is queued or running wins;
// then a dead letter that was not replayed; then the result, unless the
// job was replayed and the stored result is not the replay's (it is still
// on its way).
func (j *Job) status() string {
	resultStatus := func() string {
		if j.Result.Status == bus.StatusOK {
			return StatusOK
		}
		return StatusError
	}
	switch {
	case j.Request != nil && j.Request.Stream != bus.StreamDLQ:
		return j.Request.Status
	case len(j.DeadLetters) > 0:
		dl := j.DeadLetters[0]
		replay := bus.ReplayResultMsgID(bus.Subjects{Tenant: j.Tenant}.ResultMsgID(j.ID), strconv.FormatUint(dl.Seq, 10))
		switch {
		case dl.Replayed == nil:
			return StatusDead
		case j.Result != nil && j.resultMsgID == replay:
			return resultStatus()
		}
		return StatusQueued
	case j.Result != nil:
		return resultStatus()
	}
	return StatusError
}

func (j *Jobs) get(ctx context.Context, tenant, id string) (*Job, error) {
	job := &Job{ID: id, Tenant: tenant}
	ns := j.subj.ForTenant(tenant)
	if s, err := j.js.Stream(ctx, bus.StreamResults); err == nil {
		m, err := s.GetLastMsgForSubject(ctx, bus.ResultSubject(ns.Reply(id)))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, err
		default:
			var r bus.Result
			if err := bus.Detect(m.Header, m.Data).Unmarshal(m.Data, &r); err == nil && r.ID == id {
				job.Result, job.ResultTime, job.Group = &r, m.Time, r.Group
				job.resultMsgID = m.Header.Get(bus.HeaderMsgID)
			}
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, err
	}
	_, err := j.queued(ctx, tenant, "", func(s Summary, m *jetstream.RawStreamMsg) bool {
		if s.ID != id {
			return true
		}
		// The newest is the latest run (a replay after the first).
		job.Request = requestOf(m.Header, m.Data)
		job.Request.Time, job.Request.Seq, job.Request.Stream, job.Request.Status = m.Time, m.Sequence, ns.RequestStream(), s.Status
		job.Group = s.Group
		return false
	})
	if err != nil {
		return nil, err
	}
	return job, nil
}

// Watch follows a job's stored events and result (see bus.Client.Watch),
// from the first event, in its tenant's namespace.
func (j *Jobs) Watch(ctx context.Context, tenant, id string) (*bus.Watcher, error) {
	c, err := bus.NewClient(j.js.Conn(), bus.WithSubjects(j.subj), bus.WithTenant(tenant))
	if err != nil {
		return nil, err
	}
	return c.Watch(ctx, id, 0)
}
