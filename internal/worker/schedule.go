package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/sched"
	"github.com/switchyard/switchyard/pkg/bus"
)

// schedule pulls the jobs of one group, from all its queues (one per
// tenant and class), into the group's Concurrency slots as sched.Slots
// plans: highest class first, a share kept for interactive, each class
// shared between tenants. It fetches no more jobs than it holds slots for,
// so no job's AckWait runs while it waits in a local buffer:
//   - whenever a slot frees (or a waiting pull request ends), it fills the
//     free slots with FetchNoWait, which takes only what is queued;
//   - on each queue found empty that still has a slot for its class, one
//     pull request waits (FetchWait) holding that slot, so that a job
//     published to an idle queue starts at once. That request is a
//     long-lived iterator of one message (see poller), so a queue that
//     stays near empty under load costs one pull request a job, without a
//     subscription or a FetchNoWait per job.
func (w *Worker) schedule(ctx context.Context, group string, qs []queue) {
	keys := make([]sched.Queue, 0, len(qs))
	byQueue := map[sched.Queue]queue{}
	pollers := map[sched.Queue]*poller{}
	for _, q := range qs {
		k := sched.Queue{Tenant: q.ns.Tenant, Class: q.class, Name: q.consumer}
		keys = append(keys, k)
		byQueue[k] = q
		pollers[k] = &poller{}
	}
	slots, err := sched.New(sched.Config{Slots: w.cfg.Concurrency, InteractiveShare: w.cfg.InteractiveShare, Queues: keys})
	if err != nil { // validate checked Concurrency
		w.log.Error("scheduler", slog.String("group", group), slog.Any("error", err))
		return
	}
	var polls sync.WaitGroup
	defer func() {
		polls.Wait()
		for _, p := range pollers {
			p.stop()
		}
	}()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		failed := false
		fetch := func(k sched.Queue, n int) int {
			q, ok := byQueue[k]
			if !ok {
				return 0
			}
			batch, err := q.c.FetchNoWait(n)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Warn("fetch failed", slog.String("group", group), slog.String("stream", q.ns.RequestStream()), slog.String("class", string(k.Class)), slog.Any("error", err))
				}
				failed = true
				return 0
			}
			return w.startAll(ctx, q, k.Class, batch, slots)
		}
		_, empty := slots.Fill(fetch)
		for _, k := range slots.Polls(empty) {
			q, ok := byQueue[k]
			if !ok {
				slots.PollDone(k, false)
				continue
			}
			polls.Go(func() { w.poll(ctx, q, k, pollers[k], slots) })
		}
		if failed {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		select {
		case <-slots.Changed():
		case <-ctx.Done():
			return
		}
	}
}

// poll waits up to FetchWait for one job of q, in the slot Polls held, and
// ends the poll. A job that was the last one queued (its metadata says no
// more are pending) keeps the request's slot, and the request waits on in
// a new one when Repoll gives it: the next job of a queue that is usually
// empty is then a pull request on p's iterator away.
func (w *Worker) poll(ctx context.Context, q queue, k sched.Queue, p *poller, slots *sched.Slots) {
	for {
		msg, err := p.next(q.c, w.cfg.FetchWait)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("fetch failed", slog.String("group", q.group), slog.String("stream", q.ns.RequestStream()), slog.String("class", string(k.Class)), slog.Any("error", err))
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			}
			slots.PollDone(k, false)
			return
		}
		if msg == nil {
			slots.PollDone(k, false)
			return
		}
		if ctx.Err() != nil {
			// Stopping: hand the job back, after this worker's pull
			// requests have expired so that it goes to another worker.
			w.handBackUnstarted(msg)
			slots.PollDone(k, false)
			return
		}
		// The poll's slot passes to the job.
		w.start(q.ns, q.group, k.Class, msg, func() { slots.Release(k.Class, 1) })
		if meta, err := msg.Metadata(); err != nil || meta.NumPending > 0 {
			// More are queued: the Fill this wakes takes them at once.
			slots.PollDone(k, true)
			return
		}
		if !slots.Repoll(k) {
			return
		}
	}
}

// poller is one queue's waiting pull request: an iterator over the
// queue's consumer that asks the server for one message at a time
// (PullMaxMessages(1)), so it never holds a job the worker has no slot for.
// It outlives a poll that brought a job, and is drained and dropped after
// one that timed out. Only the queue's poll (one at a time) uses it.
type poller struct {
	it jetstream.MessagesContext
}

// next waits up to wait for one message of c: nil when none came.
func (p *poller) next(c jetstream.Consumer, wait time.Duration) (jetstream.Msg, error) {
	if p.it == nil {
		// The server keeps a pull request for its expiry, at least 1 s;
		// one that a drained iterator left is dropped when the server
		// finds nobody subscribed to its inbox.
		it, err := c.Messages(jetstream.PullMaxMessages(1), jetstream.PullExpiry(max(wait, time.Second)))
		if err != nil {
			return nil, err
		}
		p.it = it
	}
	msg, err := p.wait(wait)
	switch {
	case err == nil:
		return msg, nil
	case errors.Is(err, nats.ErrTimeout):
		// The request may still bring a job: drain the iterator, so that
		// a job on its way arrives in the slot still held for it.
		it := p.it
		p.it = nil
		it.Drain()
		msg, err := it.Next(jetstream.NextMaxWait(wait))
		it.Stop()
		if err != nil {
			return nil, nil
		}
		return msg, nil
	default:
		p.stop()
		return nil, err
	}
}

// wait reads p's iterator for up to d, in slices that double from 5 ms.
// nats.go's iterator sends its next pull request at the start of Next,
// unless it is still publishing the previous one (its fetchInProgress
// flag): a job that arrives, and is read, before that goroutine has run on
// leaves Next waiting with no request at the server until its heartbeat
// check gives up (twice the heartbeat: 2 s for FetchWait's default 2 s expiry). Each slice's Next asks
// again, so such a request goes out within about twice the time that
// goroutine was kept waiting; an idle queue's poll wakes about ten times
// per FetchWait for it.
func (p *poller) wait(d time.Duration) (jetstream.Msg, error) {
	end := time.Now().Add(d)
	for slice := 5 * time.Millisecond; ; slice *= 2 {
		left := time.Until(end)
		if left <= 0 {
			return nil, nats.ErrTimeout
		}
		msg, err := p.it.Next(jetstream.NextMaxWait(min(slice, left)))
		if !errors.Is(err, nats.ErrTimeout) {
			return msg, err
		}
	}
}

// stop ends p's iterator, if any.
func (p *poller) stop() {
	if p.it != nil {
		p.it.Stop()
		p.it = nil
	}
}

// startAll starts the jobs of a batch, each in one of the slots held for
// it, and returns how many it started.
func (w *Worker) startAll(ctx context.Context, q queue, class bus.Priority, batch jetstream.MessageBatch, slots *sched.Slots) int {
	got := 0
	for msg := range batch.Messages() {
		if ctx.Err() != nil {
			// Stopping: hand the job back, after this worker's pull
			// requests have expired so that it goes to another worker.
			w.handBackUnstarted(msg)
			continue
		}
		got++
		w.start(q.ns, q.group, class, msg, func() { slots.Release(class, 1) })
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
		w.log.Debug("fetch ended", slog.String("group", q.group), slog.Any("error", err))
	}
	return got
}
