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
//     published to an idle queue starts at once.
func (w *Worker) schedule(ctx context.Context, group string, qs []queue) {
	keys := make([]sched.Queue, 0, len(qs))
	byQueue := map[sched.Queue]queue{}
	for _, q := range qs {
		k := sched.Queue{Tenant: q.ns.Tenant, Class: q.class, Name: q.consumer}
		keys = append(keys, k)
		byQueue[k] = q
	}
	slots, err := sched.New(sched.Config{Slots: w.cfg.Concurrency, InteractiveShare: w.cfg.InteractiveShare, Queues: keys})
	if err != nil { // validate checked Concurrency
		w.log.Error("scheduler", slog.String("group", group), slog.Any("error", err))
		return
	}
	var polls sync.WaitGroup
	defer polls.Wait()
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
			polls.Go(func() { slots.PollDone(k, w.poll(ctx, q, k.Class, slots) > 0) })
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

// poll waits up to FetchWait for one job of q, in the slot Polls held.
func (w *Worker) poll(ctx context.Context, q queue, class bus.Priority, slots *sched.Slots) int {
	batch, err := q.c.Fetch(1, jetstream.FetchMaxWait(w.cfg.FetchWait))
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("fetch failed", slog.String("group", q.group), slog.String("stream", q.ns.RequestStream()), slog.String("class", string(class)), slog.Any("error", err))
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
		return 0
	}
	// The poll's slot passes to the job it brings; startAll must not
	// count it twice, so it runs with the slot already held.
	return w.startAll(ctx, q, class, batch, slots)
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
