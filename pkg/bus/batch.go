package bus

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"sync"
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
}

// RunBatch runs every item as a job with a reply in the results stream and
// calls out once per item, from one goroutine at a time, in completion order
// (not input order: each outcome carries its item, and so its custom_id).
// Invalid items are passed to out at once and never stop the batch.
//
// A line's job id is BatchJobID(cfg.ID, custom_id): a result already stored
// for it is used without publishing, and a job still in the request stream's
// dedupe window is not published again but awaited. Requests are sent with
// stream: false, since no one renders their tokens.
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
		st.Lines++
		switch {
		case o.OK():
			st.OK++
		default:
			st.Failed++
		}
		if o.Item.Err != nil {
			st.Invalid++
		}
		if o.Stored {
			st.Stored++
		}
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
			o := c.runBatchLine(ctx, cfg.ID, it)
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

// runBatchLine runs one valid item; it returns nil when ctx ended first.
func (c *Client) runBatchLine(ctx context.Context, batchID string, it BatchItem) *BatchOutcome {
	id := BatchJobID(batchID, it.CustomID)
	o := &BatchOutcome{Item: it, JobID: id}
	reply := c.subj.Reply(id)
	if r, err := c.StoredResult(ctx, reply); err == nil && r != nil {
		o.Result, o.Stored = r, true
		return o
	}
	req := *it.Request
	req.ID, req.Reply = id, ""
	no := false
	req.Stream = &no
	job, err := c.Publish(ctx, it.Group, &req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		o.Err = err
		return o
	}
	defer job.Close()
	if job.Duplicate {
		// Published by an earlier run: it may have finished meanwhile.
		if r, err := c.StoredResult(ctx, reply); err == nil && r != nil {
			o.Result, o.Stored = r, true
			return o
		}
	}
	for {
		_, res, err := job.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
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
