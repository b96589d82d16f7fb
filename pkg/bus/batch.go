package bus

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"time"
)

// BatchConfig configures Client.RunBatch. Every field but ID has a default,
// stated on the field.
type BatchConfig struct {
	// ID prefixes the job ids of the batch (see BatchJobID): running the
	// same batch id again publishes the same job ids, so that lines that
	// finished are read back from the results stream and lines still queued
	// are not published twice. Required; see BatchIDFor.
	ID string
	// Concurrency bounds the jobs in flight: a line is published only when
	// one of the batch's jobs has ended. Default 64.
	Concurrency int
	// RetryFailed runs again every line whose last run failed, whatever the
	// error. Without it a line is read back when its last run ended ok or
	// with an error of the request itself (see Settled), and run again
	// otherwise (unknown_group, rate_limited, provider_unavailable, timeout,
	// internal, ...).
	RetryFailed bool
	// Timeout is the deadline (timeout_ms) of each line's job whose request
	// sets none, counted from its publication. Default 10 minutes.
	Timeout time.Duration
	// Grace is how much longer than a line's deadline RunBatch waits for
	// its result before the line ends with a retryable timeout error (the
	// job may still be queued: a re-run waits for it again). Default 30s.
	Grace time.Duration
	// Priority is the class of each line's job whose request names none.
	// Default PriorityBatch: a batch waits behind people.
	Priority Priority
}

// BatchStats counts a batch's lines.
type BatchStats struct {
	// Lines is the number of lines that ended (invalid lines included).
	Lines int
	// OK is the number of lines whose job succeeded.
	OK int
	// Failed counts lines that did not: invalid lines and error results.
	Failed int
	// Invalid counts the lines that could not be parsed.
	Invalid int
	// Stored counts the lines whose result was read back from the results
	// stream instead of being run.
	Stored int
	// Rerun counts the lines run again because their last run failed.
	Rerun int
}

// maxBatchRuns bounds the runs of one line (one job id each, see
// batchRunID) that a re-run looks through.
const maxBatchRuns = 100

// Settled reports whether a re-run of r's request would end the same way, so
// that a batch re-run reads r back instead of running the line again: r is
// ok, or failed for a reason of the request itself (invalid_request,
// too_large, context_window_exceeded, content_policy). Failures of the fleet
// or of the moment (unknown_group, rate_limited, provider_unavailable,
// timeout, deadline_exceeded, validation_failed, auth, budget_exceeded,
// cancelled, internal) are not settled.
func Settled(r *Result) bool {
	if r.Status == StatusOK {
		return true
	}
	if r.Error == nil {
		return false
	}
	switch r.Error.Code {
	case CodeInvalidRequest, CodeTooLarge, CodeContextWindowExceeded, CodeContentPolicy:
		return true
	}
	return false
}

// RunBatch runs every item as a job with a reply in the results stream and
// calls out once per item, from one goroutine at a time, in completion order
// (not input order: each outcome carries its item, and so its custom_id).
// Invalid items are passed to out at once and never stop the batch.
//
// A line's first job id is BatchJobID(cfg.ID, group, custom_id), and each
// run after a failure gets the next id (id-r1, id-r2, ...). A re-run looks up
// the line's stored results in that order: a settled one (see Settled and
// RetryFailed) is used without publishing, a failure is run again under the
// next id, and a job still in the request stream's dedupe window is not
// published again but awaited. Requests are sent with stream: false, since
// no one renders their tokens. A line whose result does not come within its
// deadline plus cfg.Grace ends with a retryable timeout error.
//
// RunBatch returns when every item has ended, when out returns an error, or
// when ctx ends; jobs published by then go on in the fleet, and a re-run with
// the same ID picks them up.
func (c *Client) RunBatch(ctx context.Context, cfg BatchConfig, items iter.Seq[BatchItem], out func(*BatchOutcome) error) (BatchStats, error) {
	var st BatchStats
	if !ValidBatchID(cfg.ID) {
		return st, fmt.Errorf("bus: invalid batch id %q (at most 80 of [A-Za-z0-9_=/-])", cfg.ID)
	}
	conc := cmp.Or(cfg.Concurrency, 64)
	if conc < 1 {
		return st, fmt.Errorf("bus: batch concurrency %d must be at least 1", conc)
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, 10*time.Minute)
	cfg.Grace = cmp.Or(cfg.Grace, 30*time.Second)
	cfg.Priority = cmp.Or(cfg.Priority, PriorityBatch)
	if !ValidPriority(cfg.Priority) {
		return st, fmt.Errorf("bus: batch priority %q is not one of interactive, default, batch", cfg.Priority)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sem  = make(chan struct{}, conc)
		seen = map[string]int{} // custom_id -> line, to catch duplicates
	)
	deliver := func(o *BatchOutcome) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		st.count(o)
		if err := out(o); err != nil {
			cancel(err)
		}
	}

	for it := range items {
		if ctx.Err() != nil {
			break
		}
		if it.Err == nil {
			if prev, dup := seen[it.CustomID]; dup {
				it.Err = &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("line %d: custom_id %q repeats line %d", it.Line, it.CustomID, prev)}
				it.Request = nil
			} else {
				seen[it.CustomID] = it.Line
			}
		}
		if it.Err != nil {
			deliver(&BatchOutcome{Item: it, Err: it.Err})
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			o := c.runBatchLine(ctx, cfg, it)
			if o != nil {
				deliver(o)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return st, err
	}
	return st, nil
}

// count adds an ended line to the figures.
func (st *BatchStats) count(o *BatchOutcome) {
	st.Lines++
	if o.OK() {
		st.OK++
	} else {
		st.Failed++
	}
	if o.Item.Err != nil {
		st.Invalid++
	}
	if o.Stored {
		st.Stored++
	}
	if o.Rerun {
		st.Rerun++
	}
}

// runBatchLine runs one valid item; it returns nil when ctx ended first.
func (c *Client) runBatchLine(ctx context.Context, cfg BatchConfig, it BatchItem) *BatchOutcome {
	o := &BatchOutcome{Item: it}
	id, prev, err := c.batchRun(ctx, BatchJobID(cfg.ID, it.Group, it.CustomID), cfg.RetryFailed)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil
	case err != nil:
		o.Err = fmt.Errorf("bus: read back the line's earlier results: %w", err)
		return o
	case id == "":
		o.JobID, o.Result, o.Stored = prev.ID, prev, true
		return o
	}
	o.JobID, o.Rerun = id, prev != nil
	req := *it.Request
	req.ID, req.Reply = id, ""
	no := false
	req.Stream = &no
	if req.TimeoutMS == 0 && req.Deadline == "" {
		req.TimeoutMS = cfg.Timeout.Milliseconds()
	}
	req.Priority = cmp.Or(req.Priority, cfg.Priority)
	wait := cfg.Grace + lineTimeout(&req)
	job, err := c.Publish(ctx, it.Group, &req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		o.Err = err
		return o
	}
	defer job.Close()
	reply := c.subj.Reply(id)
	if job.Duplicate {
		// Published by an earlier run: it may have finished meanwhile.
		if r, err := c.StoredResult(ctx, reply); err == nil && r != nil {
			o.Result, o.Stored = r, true
			return o
		}
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		_, res, err := job.Next(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if wctx.Err() != nil {
				// The result may have been stored just now.
				if r, err := c.StoredResult(ctx, reply); err == nil && r != nil {
					o.Result = r
					return o
				}
				o.Err = &Error{Code: CodeTimeout, Retryable: true, Message: fmt.Sprintf(
					"no result for job %s within %s of publishing it (is a worker of group %q pulling? submit status shows it); a re-run waits for it again",
					id, wait.Round(time.Second), it.Group)}
				return o
			}
			o.Err = err
			return o
		}
		if res != nil {
			o.Result = res
			return o
		}
	}
}

// batchRun looks up the stored results of a line's runs in order and
// returns the job id to run next, with the last result found (nil: none).
// id is empty when that result is settled: read it back.
func (c *Client) batchRun(ctx context.Context, base string, retryFailed bool) (id string, last *Result, err error) {
	for n := range maxBatchRuns {
		id := batchRunID(base, n)
		r, err := c.StoredResult(ctx, c.subj.Reply(id))
		if err != nil {
			return "", nil, err
		}
		if r == nil {
			return id, last, nil
		}
		last = r
		if r.Status == StatusOK || !retryFailed && Settled(r) {
			return "", r, nil
		}
	}
	return "", last, nil
}

// CancelBatchLine cancels the job of a batch line that has not ended: the
// line's latest run (see RunBatch for the job ids of re-runs). A line whose
// last run ended ok has nothing to cancel.
func (c *Client) CancelBatchLine(ctx context.Context, batchID string, it BatchItem) error {
	id, _, err := c.batchRun(ctx, BatchJobID(batchID, it.Group, it.CustomID), true)
	if err != nil || id == "" {
		return err
	}
	return c.Cancel(ctx, id)
}

// batchRunID is the job id of run n (0-based) of the line whose first job
// id is base.
func batchRunID(base string, n int) string {
	if n == 0 {
		return base
	}
	return base + "-r" + strconv.Itoa(n)
}

// lineTimeout is how long a line's job may take: its timeout_ms, else the
// time left to its deadline.
func lineTimeout(r *Request) time.Duration {
	if r.TimeoutMS > 0 {
		return time.Duration(min(r.TimeoutMS, MaxTimeout.Milliseconds())) * time.Millisecond
	}
	if d, err := time.Parse(time.RFC3339Nano, r.Deadline); err == nil {
		return max(time.Until(d), 0)
	}
	return 0
}
