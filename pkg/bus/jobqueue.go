package bus

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go"
)

// msgQueue is an unbounded FIFO of one job's reply messages, filled by an
// asynchronous subscription. It replaces SubscribeSync, whose channel is
// SubChanLen (64k) pointers, 512 KiB allocated, zeroed and scanned by the
// GC for every job: with thousands of jobs in flight that was most of a
// producer's CPU and memory. A job's messages are few (its events and one
// result), so a slice is enough.
type msgQueue struct {
	mu     sync.Mutex
	msgs   []*nats.Msg
	head   int
	closed bool
	ready  chan struct{} // one pending wake-up, for pop
}

func newMsgQueue() *msgQueue { return &msgQueue{ready: make(chan struct{}, 1)} }

// push is the subscription's handler.
func (q *msgQueue) push(m *nats.Msg) {
	q.mu.Lock()
	q.msgs = append(q.msgs, m)
	q.mu.Unlock()
	q.wake()
}

// close ends the queue: pop returns what is queued, then
// nats.ErrBadSubscription, as NextMsg did on an unsubscribed subscription.
func (q *msgQueue) close(string) {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

func (q *msgQueue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop returns the next message, waiting for one until ctx ends.
func (q *msgQueue) pop(ctx context.Context) (*nats.Msg, error) {
	for {
		q.mu.Lock()
		if q.head < len(q.msgs) {
			m := q.msgs[q.head]
			q.msgs[q.head] = nil
			q.head++
			if q.head == len(q.msgs) {
				q.msgs, q.head = q.msgs[:0], 0
			}
			q.mu.Unlock()
			return m, nil
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, nats.ErrBadSubscription
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
