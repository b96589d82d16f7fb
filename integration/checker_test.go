package integration

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// history is everything the randomized schedule recorded: what was
// published, what each client saw, what the streams hold at the end, what
// the provider was asked, and when each fault was in force. check reads
// nothing else, so a history written to a file can be checked again.
type history struct {
	Seed   uint64                `json:"seed"`
	Limits limits                `json:"limits"`
	Faults []faultWindow         `json:"faults"`
	Jobs   map[string]*jobRecord `json:"jobs"`
	// Stored counts the results LLM_RESULTS holds per job id of the run
	// (every job id with the run's prefix, accepted or not).
	Stored map[string]storedResult `json:"stored"`
	// Seen is every event and result that a tenant's observer (a
	// subscription to all of the tenant's reply subjects) received.
	Seen  []seenMsg      `json:"seen"`
	Calls []providerCall `json:"calls"`
	// CrossReads are the tries of each tenant to read other tenants'
	// stored results by their reply subjects (direct gets its permissions
	// must refuse).
	CrossReads []crossRead `json:"cross_reads,omitempty"`
}

// crossRead is one tenant's try to read another tenant's stored result.
type crossRead struct {
	Reader  string `json:"reader"`
	Job     string `json:"job"`
	Subject string `json:"subject"`
	// Got is set when the read returned the result: the breach.
	Got bool   `json:"got"`
	Err string `json:"err,omitempty"`
}

// limits are the fleet settings the checker's bounds come from.
type limits struct {
	MaxDeliver int `json:"max_deliver"`
	// CallsPerDelivery is the most provider calls one delivery of a job
	// of each group may make: (1 + max_retries) times (1 + re-asks).
	CallsPerDelivery map[string]int `json:"calls_per_delivery"`
	// Grace is how late a provider call may arrive after the job's
	// deadline or cancellation (what was sent just before takes a moment
	// to arrive on a loaded machine), and how late after its deadline an
	// ok result may be stamped.
	Grace time.Duration `json:"grace"`
	// Stuck is how long after its deadline a job's result may be stored
	// when no fault was in force (see stuckBy).
	Stuck time.Duration `json:"stuck"`
}

// jobRecord is one job as its producer saw it.
type jobRecord struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Group  string `json:"group"`
	Kind   string `json:"kind"`
	// Published is when the first publish started; Accepted is set when a
	// publish returned the stream's ack (at AcceptedAt).
	Published  time.Time `json:"published"`
	Accepted   bool      `json:"accepted"`
	AcceptedAt time.Time `json:"accepted_at"`
	// Deadline is the latest deadline the worker can hold for the job (an
	// absolute deadline, or the publish's ack plus timeout_ms); zero: none.
	Deadline time.Time `json:"deadline"`
	// CancelSent is when the producer called Cancel (zero: never);
	// Cancelled is when that call returned without an error. A call that
	// failed (a NATS fault) may still have reached the workers.
	CancelSent time.Time `json:"cancel_sent"`
	Cancelled  time.Time `json:"cancelled"`
	// Results are the results the producer received (normally one).
	Results []resultSeen `json:"results"`
	// Events counts the events it received; MaxAttempt is the highest
	// delivery attempt they named.
	Events     int `json:"events"`
	MaxAttempt int `json:"max_attempt"`
	// Err is why the producer gave up on the job, if it did.
	Err string `json:"err,omitempty"`
	// Reply is the job's reply prefix (where its result is stored).
	Reply string `json:"reply,omitempty"`
}

// resultSeen is one result a producer received.
type resultSeen struct {
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Code   string    `json:"code,omitempty"`
	// WorkMS is queued_ms + total_ms: the worker finished the job that
	// long after the request's stream timestamp.
	WorkMS    int64 `json:"work_ms"`
	FromStore bool  `json:"from_store,omitempty"`
}

// storedResult is what LLM_RESULTS holds for one job.
type storedResult struct {
	Count  uint64    `json:"count"`
	At     time.Time `json:"at"` // the stored message's timestamp
	Status string    `json:"status"`
	Code   string    `json:"code,omitempty"`
}

// seenMsg is one message a tenant's observer received.
type seenMsg struct {
	Observer string `json:"observer"` // the observing tenant
	Subject  string `json:"subject"`
	Job      string `json:"job"` // the id in the message body
	Result   bool   `json:"result"`
}

// faultWindow is one fault as it was in force.
type faultWindow struct {
	Kind   faultKind `json:"kind"`
	Target string    `json:"target"` // "worker-2", "n1", "provider"
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// violation is one broken promise, with the job it concerns.
type violation struct {
	Rule string
	Job  string
	What string
}

func (v violation) String() string { return fmt.Sprintf("%s: job %s: %s", v.Rule, v.Job, v.What) }

// Rules of the checker, as printed.
const (
	ruleExactlyOne = "exactly-one-result"
	ruleUnknownJob = "result-of-unknown-job"
	ruleTenant     = "tenant-isolation"
	ruleRunCount   = "runs-within-retries"
	ruleDeadline   = "deadline"
	ruleExpired    = "call-for-expired-job"
	ruleCancelled  = "call-for-cancelled-job"
	ruleServed     = "served-group-answered-unknown"
)

// check returns every violation in h, in a stable order.
func check(h *history) []violation {
	var out []violation
	add := func(rule, job, format string, args ...any) {
		out = append(out, violation{rule, job, fmt.Sprintf(format, args...)})
	}
	calls := map[string][]providerCall{}
	for _, c := range h.Calls {
		if c.Job == "" {
			add(ruleUnknownJob, "?", "provider call from %s at %s names no job", c.Worker, c.At.Format(time.RFC3339Nano))
			continue
		}
		calls[c.Job] = append(calls[c.Job], c)
	}

	for _, id := range slices.Sorted(maps.Keys(h.Jobs)) {
		j := h.Jobs[id]
		st := h.Stored[id]
		// Exactly one result: the stream holds one, and the producer
		// received one.
		if j.Accepted {
			if st.Count != 1 {
				add(ruleExactlyOne, id, "accepted at %s, LLM_RESULTS holds %d results", j.AcceptedAt.Format(time.RFC3339Nano), st.Count)
			}
			if len(j.Results) == 0 {
				add(ruleExactlyOne, id, "accepted, the producer received no result (%s)", j.Err)
			}
		}
		// Runs: never more provider calls than the deliveries and the
		// group's retries and re-asks allow.
		if per := h.Limits.CallsPerDelivery[j.Group]; per > 0 {
			if n := len(calls[id]); n > h.Limits.MaxDeliver*per {
				add(ruleRunCount, id, "%d provider calls; at most %d deliveries x %d calls each are allowed", n, h.Limits.MaxDeliver, per)
			}
		}
		// A group the fleet serves is never unknown, whatever the faults.
		if _, served := h.Limits.CallsPerDelivery[j.Group]; served {
			for _, r := range j.Results {
				if r.Code == "unknown_group" {
					add(ruleServed, id, "group %s is served, the job was answered unknown_group", j.Group)
				}
			}
		}
		out = append(out, checkDeadline(h, j, st)...)
		out = append(out, checkLateCalls(h, j, calls[id])...)
	}
	for _, id := range slices.Sorted(maps.Keys(h.Stored)) {
		if _, ok := h.Jobs[id]; !ok {
			add(ruleUnknownJob, id, "LLM_RESULTS holds %d results for a job no producer published", h.Stored[id].Count)
		}
	}
	for id := range calls {
		if _, ok := h.Jobs[id]; !ok {
			add(ruleUnknownJob, id, "%d provider calls for a job no producer published", len(calls[id]))
		}
	}
	for _, m := range h.Seen {
		j, ok := h.Jobs[m.Job]
		switch {
		case !ok:
			add(ruleUnknownJob, m.Job, "tenant %q saw a message on %s for a job no producer published", m.Observer, m.Subject)
		case j.Tenant != m.Observer:
			add(ruleTenant, m.Job, "tenant %q saw a message on %s of tenant %q's job", m.Observer, m.Subject, j.Tenant)
		}
	}
	for _, r := range h.CrossReads {
		j, ok := h.Jobs[r.Job]
		if r.Got && (!ok || j.Tenant != r.Reader) {
			add(ruleTenant, r.Job, "tenant %q read the stored result %s of tenant %q's job", r.Reader, r.Subject, j.Tenant)
		}
	}
	slices.SortStableFunc(out, func(a, b violation) int { return strings.Compare(a.Rule+a.Job, b.Rule+b.Job) })
	return out
}

// checkDeadline: a job with a deadline that a worker finished after it must
// say deadline_exceeded (or cancelled, when it was cancelled first), and no
// job may have its result stored long after its deadline (stuck).
func checkDeadline(h *history, j *jobRecord, st storedResult) []violation {
	if j.Deadline.IsZero() || !j.Accepted {
		return nil
	}
	var out []violation
	for _, r := range j.Results {
		// The earliest the worker can have finished: the request's stream
		// timestamp is after Published.
		finished := j.Published.Add(time.Duration(r.WorkMS) * time.Millisecond)
		// Grace covers the worker's bookkeeping between the end of the
		// call and the result's timestamp (the timings are whole
		// milliseconds, and a loaded machine takes its time): an answer
		// complete just before the deadline is not late.
		late := finished.Sub(j.Deadline)
		if late <= h.Limits.Grace || r.Code == "deadline_exceeded" || (r.Code == "cancelled" && !j.CancelSent.IsZero()) {
			continue
		}
		out = append(out, violation{ruleDeadline, j.ID, fmt.Sprintf("finished at least %s after its deadline with %s, not deadline_exceeded", late.Round(time.Millisecond), cmp.Or(r.Code, r.Status))})
	}
	if st.Count > 0 {
		if by := stuckBy(h, j.Deadline); st.At.After(by) {
			out = append(out, violation{ruleDeadline, j.ID, fmt.Sprintf("result stored %s after its deadline (allowed: %s, given the faults in force)", st.At.Sub(j.Deadline).Round(time.Millisecond), by.Sub(j.Deadline).Round(time.Millisecond))})
		}
	}
	return out
}

// stuckBy is the latest time a job with deadline d may have its result
// stored: d plus Limits.Stuck, plus the time of every fault in force
// meanwhile (a fault that holds the job's worker or the stream's leader
// delays the answer by as long as it lasts).
func stuckBy(h *history, d time.Time) time.Time {
	by := d.Add(h.Limits.Stuck)
	for changed := true; changed; {
		changed = false
		extra := time.Duration(0)
		for _, f := range h.Faults {
			if f.Kind == faultStorm {
				continue // a storm fails calls; it holds nothing
			}
			extra += overlap(f.From, f.To, d, by)
		}
		if nb := d.Add(h.Limits.Stuck + extra); nb.After(by) {
			by, changed = nb, true
		}
	}
	return by
}

// checkLateCalls: no provider call may start after the job's deadline or
// after it was cancelled, but for Grace, and for a worker that could not
// know: a paused worker sends what it had ready when it is thawed, and a
// worker cut off from NATS hears no cancel until it is healed.
func checkLateCalls(h *history, j *jobRecord, calls []providerCall) []violation {
	var out []violation
	for _, c := range calls {
		if !j.Deadline.IsZero() && c.At.After(j.Deadline.Add(h.Limits.Grace)) && !h.excused(c, j.Deadline, faultPause) {
			out = append(out, violation{ruleExpired, j.ID, fmt.Sprintf("%s called the provider %s after the deadline", c.Worker, c.At.Sub(j.Deadline).Round(time.Millisecond))})
		}
		if !j.Cancelled.IsZero() && c.At.After(j.Cancelled.Add(h.Limits.Grace)) && !h.excused(c, j.Cancelled, faultPause, faultPartitionWorker, faultPartitionNode) {
			out = append(out, violation{ruleCancelled, j.ID, fmt.Sprintf("%s called the provider %s after the job was cancelled", c.Worker, c.At.Sub(j.Cancelled).Round(time.Millisecond))})
		}
	}
	return out
}

// excused reports whether a fault of one of kinds held the calling worker
// at some time between since and the call (plus Grace after it ended). A
// partitioned NATS node excuses every worker: which node a worker is
// connected to is not recorded.
func (h *history) excused(c providerCall, since time.Time, kinds ...faultKind) bool {
	for _, f := range h.Faults {
		if !slices.Contains(kinds, f.Kind) {
			continue
		}
		if f.Kind != faultPartitionNode && f.Target != c.Worker {
			continue
		}
		if overlap(f.From, f.To.Add(h.Limits.Grace), since, c.At) > 0 {
			return true
		}
	}
	return false
}

// overlap is the length of [a1, a2] ∩ [b1, b2].
func overlap(a1, a2, b1, b2 time.Time) time.Duration {
	from, to := a1, a2
	if b1.After(from) {
		from = b1
	}
	if b2.Before(to) {
		to = b2
	}
	return max(0, to.Sub(from))
}
