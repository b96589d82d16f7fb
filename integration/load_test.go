package integration

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

// record is what the test process saw of one job.
type record struct {
	id        string
	reply     string
	published time.Time
	done      time.Time
	result    *bus.Result
	// fromStore: the result was read from LLM_RESULTS because the
	// subscription missed it (the client was reconnecting).
	fromStore bool
	// maxAttempt is the highest delivery attempt seen in the job's events;
	// restartMissing counts attempts > 1 whose first event was not restart.
	maxAttempt     int
	restartMissing int
	err            error

	// timeout is the job's timeout_ms (0: none); deadline is the latest
	// deadline the worker can have derived from it (timeout_ms counts from
	// the request's stream timestamp, which is before the publish returned).
	timeout  time.Duration
	deadline time.Time
}

// load publishes n jobs to group, one every interval, and follows each one
// with the pkg/bus client until its result arrives or ctx ends.
type load struct {
	c       *cluster
	group   string
	records []*record
	wg      sync.WaitGroup
	started time.Time

	// wire counts every result message seen on core NATS, by job id: the
	// stream deduplicates a job that ran twice, core subscribers do not.
	wireMu sync.Mutex
	wire   map[string]int
	sub    *nats.Subscription

	// slack, when set, replaces stuckSlack in the lateness check, and
	// leaderless is printed with the figures: a scenario that measures how
	// long a stream had no leader allows that, not a guess (see
	// scenarioPartitionNode).
	slack      time.Duration
	leaderless time.Duration
}

func (c *cluster) startLoad(ctx context.Context, t *testing.T, group string, n int, interval time.Duration) *load {
	t.Helper()
	return c.startLoadWith(ctx, t, loadSpec{group: group, jobs: n, interval: interval})
}

// loadSpec shapes a scenario's load.
type loadSpec struct {
	group    string
	jobs     int
	interval time.Duration
	// timeout, when set, gives job i a timeout_ms (0: none).
	timeout func(i int) time.Duration
}

func (c *cluster) startLoadWith(ctx context.Context, t *testing.T, spec loadSpec) *load {
	t.Helper()
	group, n, interval := spec.group, spec.jobs, spec.interval
	l := &load{c: c, group: group, started: time.Now(), wire: map[string]int{}}
	prefix := fmt.Sprintf("%s-%s-", group, randomID())
	for i := range n {
		id := fmt.Sprintf("%s%04d", prefix, i)
		r := &record{id: id, reply: c.client.Subjects().Reply(id)}
		if spec.timeout != nil {
			r.timeout = spec.timeout(i)
		}
		l.records = append(l.records, r)
	}
	sub, err := c.nc.Subscribe(c.client.Subjects().Results(), func(m *nats.Msg) {
		id := strings.TrimSuffix(strings.TrimPrefix(m.Subject, "llm.res."), ".result")
		if strings.HasPrefix(id, prefix) {
			l.wireMu.Lock()
			l.wire[id]++
			l.wireMu.Unlock()
		}
	})
	require.NoError(t, err)
	_ = sub.SetPendingLimits(-1, -1)
	l.sub = sub
	l.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i, r := range l.records {
			if i > 0 {
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
			l.wg.Go(func() { l.run(ctx, i, r) })
		}
	})
	return l
}

func (l *load) run(ctx context.Context, i int, r *record) {
	req := &bus.Request{
		ID:       r.id,
		Messages: []bus.Message{{Role: "user", Content: bus.Text(fmt.Sprintf("chaos job %d of group %s", i, l.group))}},
		Metadata: map[string]string{"n": fmt.Sprint(i)},
	}
	if r.timeout > 0 {
		req.TimeoutMS = r.timeout.Milliseconds()
	}
	r.published = time.Now()
	var job *bus.Job
	for {
		// A publish that failed (a stream leader election, a reconnect) is
		// retried with the same id: the dedupe window makes it a no-op if
		// the first one was stored after all.
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		j, err := l.c.client.Publish(pctx, l.group, req)
		cancel()
		if err == nil {
			job = j
			if r.timeout > 0 {
				r.deadline = time.Now().Add(r.timeout)
			}
			break
		}
		if ctx.Err() != nil {
			r.err = fmt.Errorf("publish: %w", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer job.Close()
	for {
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ev, res, err := job.Next(nctx)
		cancel()
		switch {
		case res != nil:
			r.result, r.done = res, time.Now()
			return
		case ev != nil:
			if ev.Attempt > r.maxAttempt {
				if ev.Attempt > 1 && ev.Type != bus.EventRestart {
					r.restartMissing++
				}
				r.maxAttempt = ev.Attempt
			}
			continue
		}
		if ctx.Err() != nil {
			r.err = errors.New("no result before the scenario's deadline")
			return
		}
		// Nothing for a while: the result may have been published while the
		// client was reconnecting. The results stream has it if so.
		sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
		stored, serr := l.c.client.StoredResult(sctx, job.Reply)
		scancel()
		if serr == nil && stored != nil {
			r.result, r.done, r.fromStore = stored, time.Now(), true
			return
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// wait waits for every job to end (with its result or ctx's end).
func (l *load) wait(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// figures sums up a scenario for its printed line and its assertions.
type figures struct {
	Jobs, OK, Lost, Duplicated, WireDuplicates, Restarted, RestartMissing, FromStore int
	// Expired counts deadline_exceeded results. Late counts jobs with a
	// timeout whose result breaks it: an ok result the worker finished
	// after the deadline, or any result stored later than the deadline
	// plus stuckSlack (a job stuck past its deadline).
	Expired, Late int
	// Leaderless is how long LLM_RESULTS had no leader, when the scenario
	// measured it, and Slack how long after its deadline a result may be
	// stored (see load.slack).
	Leaderless, Slack time.Duration
	// PastDeadline is the latest a result was stored after its job's
	// deadline (0 when none was): what Slack must cover, as measured.
	PastDeadline time.Duration
	// ProviderCalls sums the attempts listed in the results: more than
	// Jobs means some calls failed and were retried.
	ProviderCalls int
	Errors        map[string]int
	P50, P99, Max time.Duration
}

func (f figures) String() string {
	s := fmt.Sprintf("jobs=%d ok=%d lost=%d duplicated=%d restarted=%d expired=%d late=%d p50=%s p99=%s max=%s (provider calls=%d, error results=%v, results read from the stream=%d, restarts without a restart event=%d, duplicate results on the wire=%d)",
		f.Jobs, f.OK, f.Lost, f.Duplicated, f.Restarted, f.Expired, f.Late, f.P50.Round(time.Millisecond), f.P99.Round(time.Millisecond), f.Max.Round(time.Millisecond),
		f.ProviderCalls, f.Errors, f.FromStore, f.RestartMissing, f.WireDuplicates)
	if f.Leaderless > 0 {
		s += fmt.Sprintf(" (%s leaderless %s, late past the deadline + %s)", bus.StreamResults, f.Leaderless.Round(time.Millisecond), f.Slack.Round(time.Millisecond))
	}
	if f.PastDeadline > 0 {
		s += fmt.Sprintf(" (latest result stored %s after its deadline)", f.PastDeadline.Round(time.Millisecond))
	}
	return s
}

// stuckSlack is how long after its deadline a job's result may be stored:
// a job held by a worker that died or was cut off comes back after AckWait
// and is then answered at once; the rest covers a leader election.
const stuckSlack = ackWait + 10*time.Second

// lateness says how a job with a timeout broke it, or "" if it did not.
// stored is when LLM_RESULTS stored the result.
func (r *record) lateness(stored time.Time, slack time.Duration) string {
	if r.timeout == 0 || r.result == nil || r.deadline.IsZero() {
		return ""
	}
	if r.result.Status == bus.StatusOK {
		// The worker's own account: it picked the job queued_ms after the
		// request's stream timestamp (not before r.published) and finished
		// total_ms later.
		t := r.result.Timings
		finished := r.published.Add(time.Duration(t.QueuedMS+t.TotalMS) * time.Millisecond)
		if finished.After(r.deadline) {
			return fmt.Sprintf("ok result finished at least %s after the deadline", finished.Sub(r.deadline).Round(time.Millisecond))
		}
	}
	if !stored.IsZero() && stored.After(r.deadline.Add(slack)) {
		return fmt.Sprintf("result stored %s after the deadline", stored.Sub(r.deadline).Round(time.Millisecond))
	}
	return ""
}

// finish counts the results stored in LLM_RESULTS per job (the "exactly
// one" check), combines them with what the client received, and prints the
// scenario's figures.
func (l *load) finish(ctx context.Context, t *testing.T, name string) figures {
	t.Helper()
	_ = l.sub.Unsubscribe()
	// A core subscriber can see a result that the stream never stored (it
	// had no leader then): the worker hands the job back when the PubAck
	// does not come, and runs it again. Let the group's consumer settle
	// before counting what the stream holds.
	if err := l.c.drained(ctx, l.group, 60*time.Second); err != nil {
		t.Logf("%s: consumer of %s not drained before the count: %v", name, l.group, err)
	}
	// A core subscriber can also see a result just before the R3 stream
	// has committed it: give the stream a moment to hold every result the
	// client received before counting what it holds.
	var stored map[string]uint64
	deadline := time.Now().Add(10 * time.Second)
	for {
		stored = l.c.storedResultCounts(ctx, t)
		pending := 0
		for _, r := range l.records {
			if r.result != nil && stored[bus.ResultSubject(r.reply)] == 0 {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	f := figures{Jobs: len(l.records), Errors: map[string]int{}, Leaderless: l.leaderless, Slack: cmp.Or(l.slack, stuckSlack)}
	var lat []time.Duration
	for _, r := range l.records {
		n := stored[bus.ResultSubject(r.reply)]
		if n > 1 {
			f.Duplicated++
		}
		l.wireMu.Lock()
		if l.wire[r.id] > 1 {
			f.WireDuplicates++
		}
		l.wireMu.Unlock()
		if r.result == nil || n == 0 {
			f.Lost++
			l.wireMu.Lock()
			wire := l.wire[r.id]
			l.wireMu.Unlock()
			t.Logf("%s: lost job %s: client result %v, error %v, stored results %d, results on the wire %d, highest attempt %d",
				name, r.id, r.result != nil, r.err, n, wire, r.maxAttempt)
			continue
		}
		if r.fromStore {
			f.FromStore++
		}
		if r.timeout > 0 {
			st := l.c.storedAt(ctx, t, r.reply)
			if !st.IsZero() && !r.deadline.IsZero() {
				f.PastDeadline = max(f.PastDeadline, st.Sub(r.deadline))
			}
			if why := r.lateness(st, f.Slack); why != "" {
				f.Late++
				t.Logf("%s: job %s (timeout %s): %s; published %s, highest attempt %d, result seen by the client %s later (from the stream: %v), worker's queued+total %d+%d ms",
					name, r.id, r.timeout, why, r.published.Format("15:04:05.000"), r.maxAttempt, r.done.Sub(r.published).Round(time.Millisecond), r.fromStore,
					r.result.Timings.QueuedMS, r.result.Timings.TotalMS)
			}
		}
		if r.maxAttempt > 1 {
			f.Restarted++
		}
		f.RestartMissing += r.restartMissing
		f.ProviderCalls += len(r.result.Attempts)
		if r.result.Status == bus.StatusOK {
			f.OK++
		} else {
			if r.result.Error != nil && r.result.Error.Code == bus.CodeDeadlineExceeded {
				f.Expired++
			}
			code := "?"
			if r.result.Error != nil {
				code = string(r.result.Error.Code)
			}
			f.Errors[code]++
		}
		lat = append(lat, r.done.Sub(r.published))
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		f.P50, f.P99, f.Max = percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)
	}
	l.c.report(t, fmt.Sprintf("scenario %s: %s", name, f))
	return f
}

// storedResultCounts returns the number of messages in LLM_RESULTS per
// result subject.
func (c *cluster) storedResultCounts(ctx context.Context, t *testing.T) map[string]uint64 {
	t.Helper()
	var counts map[string]uint64
	eventually(t, ctx, 30*time.Second, "results stream subjects", func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, bus.StreamResults)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(c.client.Subjects().Results()))
		if err != nil {
			return err
		}
		counts = info.State.Subjects
		return nil
	})
	return counts
}

// storedAt returns when LLM_RESULTS stored the job's result (zero if it
// holds none).
func (c *cluster) storedAt(ctx context.Context, t *testing.T, reply string) time.Time {
	t.Helper()
	var at time.Time
	eventually(t, ctx, 30*time.Second, "stored result of "+reply, func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, bus.StreamResults)
		if err != nil {
			return err
		}
		m, err := s.GetLastMsgForSubject(ctx, bus.ResultSubject(reply))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		at = m.Time
		return nil
	})
	return at
}

// requireDrained waits until group's consumer has nothing pending or
// unacknowledged: nothing stuck, nothing redelivering.
func (c *cluster) requireDrained(ctx context.Context, t *testing.T, group string) {
	t.Helper()
	eventually(t, ctx, 30*time.Second, "consumer of "+group+" drained", func(ctx context.Context) error {
		return c.consumerDrained(ctx, group)
	})
}

// drained waits up to timeout for group's consumer to drain and returns
// why it did not.
func (c *cluster) drained(ctx context.Context, group string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.consumerDrained(cctx, group)
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *cluster) consumerDrained(ctx context.Context, group string) error {
	cons, err := c.js.Consumer(ctx, bus.StreamRequests, bus.ConsumerName(group))
	if err != nil {
		return err
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	if ci.NumAckPending != 0 || ci.NumPending != 0 || ci.NumRedelivered != 0 {
		return fmt.Errorf("ack pending %d, pending %d, redelivered %d", ci.NumAckPending, ci.NumPending, ci.NumRedelivered)
	}
	return nil
}

// requireHealthyFigures asserts the common outcome of a chaos scenario:
// every job has exactly one stored, ok result.
func requireHealthyFigures(t *testing.T, f figures) {
	t.Helper()
	require.Zero(t, f.Lost, "lost jobs")
	require.Zero(t, f.Duplicated, "jobs with more than one stored result")
	require.Equal(t, f.Jobs, f.OK, "every job ends ok; error results: %v", f.Errors)
}

// requireTimelyFigures asserts the outcome of a scenario whose jobs have
// timeouts: every job has exactly one stored result, ok or
// deadline_exceeded, and none is late (see record.lateness).
func requireTimelyFigures(t *testing.T, f figures) {
	t.Helper()
	require.Zero(t, f.Lost, "lost jobs")
	require.Zero(t, f.Duplicated, "jobs with more than one stored result")
	require.Zero(t, f.Late, "jobs stuck past their deadline, or ok after it")
	require.Equal(t, f.Jobs, f.OK+f.Expired, "every job ends ok or deadline_exceeded; error results: %v", f.Errors)
}

// percentile returns the p-th percentile (nearest rank) of sorted values.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100 // ceil(n*p/100)
	return sorted[min(max(rank, 1), len(sorted))-1]
}
