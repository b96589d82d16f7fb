package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// scanBatch is how many messages one pull of a scan asks for.
const scanBatch = 512

// scanWait bounds one pull of a scan when its context has no sooner
// deadline.
const scanWait = 10 * time.Second

// scan reads the messages of stream that cfg selects, oldest first, and
// passes each to fn until fn returns false, max messages were read, or the
// messages that existed when it started are read. It reports whether it
// stopped at max with messages left unread.
//
// It counts the messages it must read from its own consumer's pending
// count when created, and each pull asks for no more than are left, so a
// pull ends when its messages arrive, however late. (A pull without
// waiting would be simpler, but nats.go gives one 1 s: on a loaded server
// a late answer reads as "no more messages", and a listing came back
// empty.) The consumer is ephemeral, acks nothing and is deleted at the
// end.
func scan(ctx context.Context, s jetstream.Stream, cfg jetstream.ConsumerConfig, max int, fn func(jetstream.Msg) bool) (truncated bool, err error) {
	name := s.CachedInfo().Config.Name
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = time.Minute
	cons, err := s.CreateConsumer(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("ops: scan %s: %w", name, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, cons.CachedInfo().Name) // else it goes when inactive
	}()
	pending := int(cons.CachedInfo().NumPending)
	for read := 0; read < pending; {
		if read == max {
			return true, nil
		}
		wait := scanWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		if wait <= 0 {
			return false, context.DeadlineExceeded
		}
		batch, err := cons.Fetch(min(scanBatch, pending-read, max-read), jetstream.FetchMaxWait(wait))
		if err != nil {
			return false, fmt.Errorf("ops: scan %s: %w", name, err)
		}
		n, last := 0, false
		for m := range batch.Messages() {
			n++
			read++
			if !fn(m) {
				return false, nil
			}
			if meta, err := m.Metadata(); err == nil && meta.NumPending == 0 {
				last = true // the rest was removed (retention) while it was read
				break
			}
		}
		if last {
			return false, nil
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			return false, fmt.Errorf("ops: scan %s: %w", name, err)
		}
		if n == 0 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			return false, fmt.Errorf("ops: scan %s: no answer in %s with %d messages left", name, wait, pending-read)
		}
	}
	return false, nil
}
