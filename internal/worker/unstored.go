package worker

import (
	"container/list"
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
// or crashed) runs the job again. This file holds the memo only; what
// publishes from it (publishResult, sendResultMsg, republish) is in
// reply.go with every other publish, ack, nak and term.

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
