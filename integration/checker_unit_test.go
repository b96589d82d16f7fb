package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCheck feeds the checker histories that break one promise each, and
// one that breaks none: each rule must fire on its own breach and on
// nothing else. It needs no Docker.
func TestCheck(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// clean is a history with one healthy job of each shape.
	clean := func() *history {
		return &history{
			Limits: limits{MaxDeliver: 6, CallsPerDelivery: map[string]int{"chat": 4}, Grace: time.Second, Stuck: 14 * time.Second},
			Jobs: map[string]*jobRecord{
				"a": {ID: "a", Group: "chat", Published: at(0), Accepted: true, AcceptedAt: at(5),
					Results: []resultSeen{{At: at(300), Status: "ok", WorkMS: 290}}},
				// Expired while queued: answered deadline_exceeded, late.
				"d": {ID: "d", Group: "chat", Published: at(0), Accepted: true, AcceptedAt: at(5), Deadline: at(500),
					Results: []resultSeen{{At: at(4600), Status: "error", Code: "deadline_exceeded", WorkMS: 4590}}},
				// Cancelled while running: no call after the cancel.
				"c": {ID: "c", Group: "chat", Published: at(0), Accepted: true, AcceptedAt: at(5), CancelSent: at(195), Cancelled: at(200),
					Results: []resultSeen{{At: at(210), Status: "error", Code: "cancelled", WorkMS: 205}}},
				// Never accepted (the run ended first): no result needed.
				"u": {ID: "u", Group: "chat", Published: at(0)},
			},
			Stored: map[string]storedResult{
				"a": {Count: 1, At: at(300), Status: "ok"},
				"d": {Count: 1, At: at(4600), Status: "error", Code: "deadline_exceeded"},
				"c": {Count: 1, At: at(210), Status: "error", Code: "cancelled"},
			},
			Seen: []seenMsg{{Observer: "", Subject: "llm.res.a.result", Job: "a", Result: true}},
			Calls: []providerCall{
				{Job: "a", Worker: "worker-1", At: at(10)},
				{Job: "c", Worker: "worker-2", At: at(10)},
			},
		}
	}
	tests := []struct {
		name   string
		breach func(h *history)
		rule   string // "" for none
	}{
		{"clean", func(*history) {}, ""},
		{"no stored result", func(h *history) { delete(h.Stored, "a") }, ruleExactlyOne},
		{"two stored results", func(h *history) { h.Stored["a"] = storedResult{Count: 2, At: at(300)} }, ruleExactlyOne},
		{"producer got none", func(h *history) { h.Jobs["a"].Results = nil }, ruleExactlyOne},
		{"result of an unpublished job", func(h *history) { h.Stored["x"] = storedResult{Count: 1} }, ruleUnknownJob},
		{"call for an unpublished job", func(h *history) { h.Calls = append(h.Calls, providerCall{Job: "x", At: at(1)}) }, ruleUnknownJob},
		{"message of an unpublished job", func(h *history) {
			h.Seen = append(h.Seen, seenMsg{Subject: "llm.res.x.events", Job: "x"})
		}, ruleUnknownJob},
		{"another tenant's message", func(h *history) {
			h.Seen = append(h.Seen, seenMsg{Observer: "acme", Subject: "llm.t.acme.res.a.result", Job: "a", Result: true})
		}, ruleTenant},
		{"another tenant's stored result read", func(h *history) {
			h.CrossReads = append(h.CrossReads, crossRead{Reader: "acme", Job: "a", Subject: "llm.res.a.result", Got: true})
		}, ruleTenant},
		{"another tenant's stored result refused", func(h *history) {
			h.CrossReads = append(h.CrossReads, crossRead{Reader: "acme", Job: "a", Subject: "llm.res.a.result", Err: "permissions violation"})
		}, ""},
		{"too many calls", func(h *history) {
			for range 6 * 4 {
				h.Calls = append(h.Calls, providerCall{Job: "a", Worker: "worker-1", At: at(20)})
			}
		}, ruleRunCount},
		{"ok after the deadline", func(h *history) {
			h.Jobs["a"].Deadline = at(1000)
			h.Jobs["a"].Results[0].WorkMS = 2500
		}, ruleDeadline},
		{"ok stamped just after the deadline", func(h *history) {
			h.Jobs["a"].Deadline = at(288) // the answer was whole; its stamp came 2 ms late
		}, ""},
		{"stuck past the deadline", func(h *history) {
			h.Stored["d"] = storedResult{Count: 1, At: at(500 + 15000), Code: "deadline_exceeded"}
		}, ruleDeadline},
		{"call after the deadline", func(h *history) {
			h.Calls = append(h.Calls, providerCall{Job: "d", Worker: "worker-3", At: at(2000)})
		}, ruleExpired},
		{"a served group answered unknown", func(h *history) {
			h.Jobs["a"].Results[0] = resultSeen{At: at(300), Status: "error", Code: "unknown_group", WorkMS: 290}
		}, ruleServed},
		{"cancelled after the deadline by a cancel whose call failed", func(h *history) {
			// The cancel's KV put failed in a NATS fault, but the workers
			// heard it: cancelled is as good an answer as deadline_exceeded.
			h.Jobs["d"].CancelSent = at(600)
			h.Jobs["d"].Results[0].Code = "cancelled"
		}, ""},
		{"cancelled after the deadline, never asked to", func(h *history) {
			h.Jobs["d"].Results[0].Code = "cancelled"
		}, ruleDeadline},
		{"call after the cancel", func(h *history) {
			h.Calls = append(h.Calls, providerCall{Job: "c", Worker: "worker-2", At: at(1500)})
		}, ruleCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := clean()
			tt.breach(h)
			vs := check(h)
			if tt.rule == "" {
				require.Empty(t, vs)
				return
			}
			require.NotEmpty(t, vs, "the breach must be caught")
			for _, v := range vs {
				require.Equal(t, tt.rule, v.Rule, "only the breached rule fires: %s", v)
			}
		})
	}
}

// TestCheckExcuses: what a fault explains is not a violation. A paused
// worker's late call, a cut-off worker's call for a job cancelled while it
// could not hear, and a result delayed by as long as a fault held the
// fleet are excused; the same outside the fault's window are not.
func TestCheckExcuses(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	base := func(faults ...faultWindow) *history {
		return &history{
			Limits: limits{MaxDeliver: 6, CallsPerDelivery: map[string]int{"chat": 4}, Grace: time.Second, Stuck: 14 * time.Second},
			Faults: faults,
			Jobs: map[string]*jobRecord{
				"d": {ID: "d", Group: "chat", Published: at(0), Accepted: true, AcceptedAt: at(5), Deadline: at(1000),
					Results: []resultSeen{{At: at(9000), Status: "error", Code: "deadline_exceeded", WorkMS: 8990}}},
				"c": {ID: "c", Group: "chat", Published: at(0), Accepted: true, AcceptedAt: at(5), Cancelled: at(1000),
					Results: []resultSeen{{At: at(9000), Status: "error", Code: "cancelled", WorkMS: 8990}}},
			},
			Stored: map[string]storedResult{
				"d": {Count: 1, At: at(25000), Code: "deadline_exceeded"},
				"c": {Count: 1, At: at(9000), Code: "cancelled"},
			},
			Calls: []providerCall{
				{Job: "d", Worker: "worker-1", At: at(8000)},
				{Job: "c", Worker: "worker-2", At: at(8000)},
			},
		}
	}
	pause := faultWindow{Kind: faultPause, Target: "worker-1", From: at(500), To: at(7500)}
	cut := faultWindow{Kind: faultPartitionWorker, Target: "worker-2", From: at(900), To: at(7500)}
	// Without faults: the late calls and the stuck result are violations.
	rules := map[string]int{}
	for _, v := range check(base()) {
		rules[v.Rule]++
	}
	require.Equal(t, map[string]int{ruleExpired: 1, ruleCancelled: 1, ruleDeadline: 1}, rules)
	// With them: excused. The result stored 24s after the deadline is
	// within 14s plus the 6.5s each fault overlapped the wait.
	require.Empty(t, check(base(pause, cut)))
	// A fault of another worker excuses nothing.
	other := pause
	other.Target = "worker-3"
	require.NotEmpty(t, check(base(other, cut)))
}

// TestSettleOutlastsAHungProbe: the fault runner's health probe can hang
// on a connection a cut left stale. pollUntil must give up on that
// probe and try again, not spend its whole window on it. It needs no
// Docker.
func TestSettleOutlastsAHungProbe(t *testing.T) {
	t.Parallel()
	calls := 0
	probe := func(ctx context.Context) error {
		calls++
		if calls == 1 {
			<-ctx.Done() // a request that is never answered
			return ctx.Err()
		}
		return nil
	}
	start := time.Now()
	require.NoError(t, pollUntil(t.Context(), 3*time.Second, 200*time.Millisecond, 250*time.Millisecond, probe))
	require.Equal(t, 2, calls)
	require.Less(t, time.Since(start), 2*time.Second)

	// A fleet that never heals: the error names what was unhealthy.
	err := pollUntil(t.Context(), 600*time.Millisecond, 100*time.Millisecond, 250*time.Millisecond, func(context.Context) error {
		return errors.New("stream LLM_RESULTS replica n3 is not current")
	})
	require.ErrorContains(t, err, "replica n3 is not current")
}
