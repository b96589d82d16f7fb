package worker

import (
	"container/list"
	"context"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/pkg/bus"
)

// A result whose publish failed may still have reached the client: a
// JetStream publish is a core publish too, delivered to the live
// subscribers of the result subject whether or not the stream stores it
// (storage full), and a stored message's PubAck can be lost. Running the job
// again on its next delivery would then answer it twice, differently: the
// client saw one result live and reads another one back from the results
// stream. So the worker keeps the message it could not store and a
// redelivery of the job to this worker publishes those same bytes, with the
// same Nats-Msg-Id (deduplicated when the first publish was stored after
// all), instead of running the job again.
//
// The memo is in memory: a redelivery to another worker (this one stopped
// or crashed) runs the job again.

// unstoredCap bounds the memo by entries and by bytes; the oldest entries
// go first (their jobs were most likely redelivered to another worker).
const (
	unstoredCap      = 1024
	unstoredCapBytes = 64 << 20
)

// unstored is the memo of result messages that could not be stored, by
// their Nats-Msg-Id. Its zero value is ready to use; it is safe for
// concurrent use.
type unstored struct {
	mu    sync.Mutex
	byID  map[string]*list.Element
	order list.List // of *unstoredResult, oldest first
	bytes int
}

type unstoredResult struct {
	id  string
	msg *nats.Msg
	res *bus.Result // what the message says, for the job's report
}

func msgSize(m *nats.Msg) int {
	n := len(m.Subject) + len(m.Data)
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v)
		}
	}
	return n
}

// put remembers m, the result message of res that could not be stored.
func (u *unstored) put(m *nats.Msg, res *bus.Result) {
	id := m.Header.Get(bus.HeaderMsgID)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byID == nil {
		u.byID = map[string]*list.Element{}
	}
	u.removeLocked(id)
	u.byID[id] = u.order.PushBack(&unstoredResult{id: id, msg: m, res: res})
	u.bytes += msgSize(m)
	for u.order.Len() > unstoredCap || u.bytes > unstoredCapBytes {
		u.removeLocked(u.order.Front().Value.(*unstoredResult).id)
	}
}

// get returns the remembered result message of msg id id, if any.
func (u *unstored) get(id string) (*nats.Msg, *bus.Result) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if e, ok := u.byID[id]; ok {
		r := e.Value.(*unstoredResult)
		return r.msg, r.res
	}
	return nil, nil
}

// forget drops the entry of msg id id: its result is stored.
func (u *unstored) forget(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.removeLocked(id)
}

func (u *unstored) removeLocked(id string) {
	if e, ok := u.byID[id]; ok {
		u.bytes -= msgSize(e.Value.(*unstoredResult).msg)
		u.order.Remove(e)
		delete(u.byID, id)
	}
}

// len returns the number of remembered messages.
func (u *unstored) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.order.Len()
}

// resultMsgID is the Nats-Msg-Id of the job's result message (see
// resultMsg).
func (j *job) resultMsgID() string {
	return bus.ReplayResultMsgID(j.subj.ResultMsgID(j.id), j.replay)
}

// sendResultMsg publishes an encoded result message: into the results
// stream (awaiting its ack) when the reply prefix is the default one, else
// with core NATS, flushed.
func (j *job) sendResultMsg(ctx context.Context, m *nats.Msg) error {
	if j.subj.InResults(j.reply) {
		_, err := j.w.js.PublishMsg(ctx, m)
		return err
	}
	if err := j.w.nc.PublishMsg(m); err != nil {
		return err
	}
	return j.w.nc.FlushWithContext(ctx)
}

// republish answers a redelivered job with the result message an earlier
// delivery could not store, if this worker kept one: it publishes the same
// bytes again and acks. It reports whether the job is done with (answered,
// or handed back because the store still fails).
func (j *job) republish() bool {
	m, res := j.w.unstored.get(j.resultMsgID())
	if m == nil {
		return false
	}
	j.w.log.Info("redelivered job has a result that was not stored; publishing it again, not running the job",
		slog.String("job", j.id), slog.Int("delivery", j.attempt))
	if err := j.store(func(ctx context.Context) error { return j.sendResultMsg(ctx, m) }); err != nil {
		j.retryLater("result", err)
		return true
	}
	j.w.unstored.forget(j.resultMsgID())
	j.answered = true
	j.ack()
	j.dropObject()
	j.report(res, nil)
	j.logDone(res)
	return true
}
