package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// tenantConn is one tenant's producer: its connection, its client, and an
// observer subscribed to all of the tenant's reply subjects.
type tenantConn struct {
	name   string
	nc     *nats.Conn
	client *bus.Client
	sub    *nats.Subscription
	// limited is set for a tenant whose NATS user holds only its own
	// namespace: it also snoops (subscribes to every reply namespace, which
	// its permissions must refuse) and tries to read other tenants' stored
	// results (see crossReads).
	limited bool
	snoop   *nats.Subscription
}

// traffic is the randomized schedule's load: jobs of every kind, drawn
// from the seed, published at a steady rate by each tenant's producer and
// followed to their result, everything recorded in a history.
type traffic struct {
	c       *cluster
	tenants []*tenantConn
	prefix  string // every job id of the run starts with it
	rate    float64

	rng *rand.Rand // the generator's own: used by one goroutine
	seq int

	mu   sync.Mutex
	jobs map[string]*jobRecord
	// seen aggregates the observers' messages: one entry per observer,
	// job and kind, with the first subject.
	seen map[seenKey]string
	wg   sync.WaitGroup
}

type seenKey struct {
	observer, job string
	result        bool
}

func newTraffic(c *cluster, seed uint64, rate float64, tenants []*tenantConn) *traffic {
	return &traffic{
		c: c, tenants: tenants, rate: rate,
		prefix: "cz" + c.runID + "-",
		rng:    rand.New(rand.NewPCG(seed, 0x7aff1c)),
		jobs:   map[string]*jobRecord{},
		seen:   map[seenKey]string{},
	}
}

// observe subscribes every tenant's observer. Messages whose body names a
// job of another run are ignored; all others are recorded.
func (tr *traffic) observe() error {
	for _, tc := range tr.tenants {
		record := func(m *nats.Msg) {
			var probe struct {
				ID string `json:"id" msgpack:"id"`
			}
			if err := bus.Detect(m.Header, m.Data).Unmarshal(m.Data, &probe); err != nil || !strings.HasPrefix(probe.ID, tr.prefix) {
				return
			}
			k := seenKey{tc.name, probe.ID, strings.HasSuffix(m.Subject, ".result")}
			tr.mu.Lock()
			if _, ok := tr.seen[k]; !ok {
				tr.seen[k] = m.Subject
			}
			tr.mu.Unlock()
		}
		sub, err := tc.nc.Subscribe(tc.client.Subjects().Reply("*")+".>", record)
		if err != nil {
			return err
		}
		_ = sub.SetPendingLimits(-1, -1)
		tc.sub = sub
		if tc.limited {
			// Every subject the workers answer on: the server must refuse
			// this subscription (a permissions violation, reported
			// asynchronously), so nothing of another tenant ever arrives;
			// what does is recorded and the checker flags it.
			if tc.snoop, err = tc.nc.Subscribe(">", record); err != nil {
				return err
			}
		}
	}
	return nil
}

// crossReads has every limited tenant try to read, by its reply subject,
// the stored result of up to n accepted jobs of each other tenant: direct
// gets its permissions must refuse.
func (tr *traffic) crossReads(ctx context.Context, n int) []crossRead {
	tr.mu.Lock()
	byTenant := map[string][]*jobRecord{}
	for _, id := range slices.Sorted(maps.Keys(tr.jobs)) {
		if j := tr.jobs[id]; j.Accepted && j.Reply != "" && len(j.Results) > 0 && len(byTenant[j.Tenant]) < n {
			byTenant[j.Tenant] = append(byTenant[j.Tenant], j)
		}
	}
	tr.mu.Unlock()
	// A refused direct get gets no reply: it ends at its timeout. They
	// run at once, so the probe takes one timeout, not one per read.
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out []crossRead
	)
	for _, tc := range tr.tenants {
		if !tc.limited {
			continue
		}
		for tenant, jobs := range byTenant {
			if tenant == tc.name {
				continue
			}
			for _, j := range jobs {
				wg.Go(func() {
					rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
					res, err := tc.client.StoredResult(rctx, j.Reply)
					cancel()
					r := crossRead{Reader: tc.name, Job: j.ID, Subject: bus.ResultSubject(j.Reply), Got: err == nil && res != nil}
					if err != nil {
						r.Err = err.Error()
					}
					mu.Lock()
					out = append(out, r)
					mu.Unlock()
				})
			}
		}
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b crossRead) int { return strings.Compare(a.Reader+a.Job, b.Reader+b.Job) })
	return out
}

// run publishes jobs until ctx ends, then waits for every job to end, at
// most drain longer.
func (tr *traffic) run(ctx context.Context, drain time.Duration) {
	follow, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	tick := time.NewTicker(time.Duration(float64(time.Second) / tr.rate))
	defer tick.Stop()
	// Batches come every so many ticks, not seconds, so that a seed draws
	// the same jobs in the same order however the machine keeps time.
	ticks := func(lo, hi time.Duration) int { return int(tr.between(lo, hi).Seconds() * tr.rate) }
	nextBatch := ticks(5*time.Second, 15*time.Second)
loop:
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		if n >= nextBatch {
			// A batch: many jobs at once, no tokens streamed.
			size := 10 + tr.rng.IntN(21)
			for range size {
				tr.launch(follow, "batch")
			}
			nextBatch = n + ticks(10*time.Second, 25*time.Second)
			continue
		}
		u := tr.rng.Float64()
		switch {
		case u < 0.45:
			tr.launch(follow, "stream")
		case u < 0.65:
			tr.launch(follow, "whole")
		case u < 0.85:
			tr.launch(follow, "json")
		default:
			tr.launch(follow, "tools")
		}
	}
	done := make(chan struct{})
	go func() { tr.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		stop() // what is still open is recorded as given up
		<-done
	}
}

func (tr *traffic) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(tr.rng.Int64N(int64(hi-lo)))
}

// launch draws one job of kind and starts following it. Every random
// choice is made here, in the generator's goroutine, so that a seed draws
// the same jobs in the same order.
func (tr *traffic) launch(ctx context.Context, kind string) {
	tc := tr.tenants[tr.rng.IntN(len(tr.tenants))]
	id := fmt.Sprintf("%s%06d", tr.prefix, tr.seq)
	tr.seq++
	no := false
	req := &bus.Request{ID: id, Metadata: map[string]string{"kind": kind}}
	group := "chat"
	tokens := 4 + tr.rng.IntN(57) // 4..60 chunks, 20 ms apart
	switch kind {
	case "whole", "batch":
		req.Stream = &no
		tokens = 4 + tr.rng.IntN(17)
	case "json":
		group = "json"
		req.ResponseFormat = &bus.ResponseFormat{Type: "json_schema", JSONSchema: &bus.JSONSchema{Name: "city", Schema: rawSchema(chaosSchema)}}
		if tr.rng.IntN(2) == 0 {
			req.Stream = &no
		}
	case "tools":
		group = "tools"
		req.Tools = []bus.Tool{{Type: "function", Function: bus.FunctionSpec{
			Name: "lookup", Description: "look a city up", Parameters: rawSchema(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
		}}}
		req.ToolChoice = &bus.ToolChoice{Mode: "required"}
	}
	req.Messages = []bus.Message{{Role: "user", Content: bus.Text(fmt.Sprintf("[job %s] [tokens %d] %s job of the randomized schedule", id, tokens, kind))}}

	rec := &jobRecord{ID: id, Tenant: tc.name, Group: group, Kind: kind}
	var timeout time.Duration
	if kind != "batch" && tr.rng.Float64() < 0.2 {
		// A deadline that a fault can outlive: absolute, or relative to
		// the publication.
		d := tr.between(300*time.Millisecond, 4*time.Second)
		if tr.rng.IntN(2) == 0 {
			rec.Deadline = time.Now().Add(d)
			req.Deadline = rec.Deadline.UTC().Format(time.RFC3339Nano)
		} else {
			timeout = d
			req.TimeoutMS = d.Milliseconds()
		}
	}
	var cancelAfter time.Duration
	if kind != "batch" && tr.rng.Float64() < 0.1 {
		cancelAfter = tr.between(50*time.Millisecond, 1500*time.Millisecond)
	}
	tr.mu.Lock()
	tr.jobs[id] = rec
	tr.mu.Unlock()
	tr.wg.Go(func() { tr.follow(ctx, tc, group, req, rec, timeout, cancelAfter) })
}

func rawSchema(s string) any {
	var v any
	if err := bus.JSON.Unmarshal([]byte(s), &v); err != nil {
		panic(err)
	}
	return v
}

// follow publishes one job (retrying with the same id until the stream
// acks it: the dedupe window makes a retry a no-op if an earlier publish
// was stored after all), cancels it when asked, and reads its events and
// result; a result missed while the connection was down is read from the
// results stream.
func (tr *traffic) follow(ctx context.Context, tc *tenantConn, group string, req *bus.Request, rec *jobRecord, timeout, cancelAfter time.Duration) {
	set := func(fn func()) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		fn()
	}
	set(func() { rec.Published = time.Now() })
	var job *bus.Job
	for job == nil {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		j, err := tc.client.Publish(pctx, group, req)
		cancel()
		switch {
		case err == nil:
			job = j
			set(func() {
				rec.Accepted, rec.AcceptedAt, rec.Reply = true, time.Now(), j.Reply
				if timeout > 0 {
					rec.Deadline = rec.AcceptedAt.Add(timeout)
				}
			})
		case ctx.Err() != nil:
			set(func() { rec.Err = "publish: " + err.Error() })
			return
		default:
			time.Sleep(100 * time.Millisecond)
		}
	}
	defer job.Close()
	if cancelAfter > 0 {
		tr.wg.Go(func() {
			if !sleepUntil(ctx, time.Now().Add(cancelAfter)) {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			set(func() { rec.CancelSent = time.Now() })
			if err := tc.client.Cancel(cctx, req.ID); err == nil {
				set(func() { rec.Cancelled = time.Now() })
			}
		})
	}
	for {
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ev, res, err := job.Next(nctx)
		cancel()
		switch {
		case res != nil:
			tr.result(rec, res, false)
			return
		case ev != nil:
			set(func() {
				rec.Events++
				rec.MaxAttempt = max(rec.MaxAttempt, ev.Attempt)
			})
			continue
		}
		if ctx.Err() != nil {
			set(func() { rec.Err = "no result before the end of the run" })
			return
		}
		sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
		stored, serr := tc.client.StoredResult(sctx, job.Reply)
		scancel()
		if serr == nil && stored != nil {
			tr.result(rec, stored, true)
			return
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func (tr *traffic) result(rec *jobRecord, res *bus.Result, fromStore bool) {
	rs := resultSeen{At: time.Now(), Status: string(res.Status), WorkMS: res.Timings.QueuedMS + res.Timings.TotalMS, FromStore: fromStore}
	if res.Error != nil {
		rs.Code = string(res.Error.Code)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	rec.Results = append(rec.Results, rs)
}

// collect builds the history: the jobs, what LLM_RESULTS holds for every
// job id of the run, and what the observers saw.
func (tr *traffic) collect(ctx context.Context, t *testing.T) (map[string]*jobRecord, map[string]storedResult, []seenMsg) {
	t.Helper()
	for _, tc := range tr.tenants {
		_ = tc.sub.Unsubscribe()
		if tc.snoop != nil {
			_ = tc.snoop.Unsubscribe()
		}
	}
	stored := map[string]storedResult{}
	s, err := tr.c.js.Stream(ctx, bus.StreamResults)
	if err != nil {
		t.Fatalf("results stream: %v", err)
	}
	for _, tc := range tr.tenants {
		subj := tc.client.Subjects()
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj.Results()))
		if err != nil {
			t.Fatalf("results stream subjects: %v", err)
		}
		for subject, n := range info.State.Subjects {
			id, ok := strings.CutSuffix(strings.TrimPrefix(subject, subj.Reply("")), ".result")
			if !ok || !strings.HasPrefix(id, tr.prefix) {
				continue
			}
			sr := storedResult{Count: n}
			m, err := s.GetLastMsgForSubject(ctx, subject)
			if err != nil {
				t.Fatalf("stored result %s: %v", subject, err)
			}
			sr.At = m.Time
			var r bus.Result
			if err := bus.Detect(m.Header, m.Data).Unmarshal(m.Data, &r); err == nil {
				sr.Status = string(r.Status)
				if r.Error != nil {
					sr.Code = string(r.Error.Code)
				}
			}
			stored[id] = sr
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var seen []seenMsg
	for k, subject := range tr.seen {
		seen = append(seen, seenMsg{Observer: k.observer, Subject: subject, Job: k.job, Result: k.result})
	}
	return tr.jobs, stored, seen
}
