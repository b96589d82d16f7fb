package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// scanBatch is how many messages one pull of a scan asks for.
const scanBatch = 512

// scan reads the messages of stream that cfg selects, oldest first, and
// passes each to fn until fn returns false, max messages were read, or the
// stream has no more. It reports whether it stopped at max with messages
// left unread. It uses an ordered consumer (no state left on the server)
// and pulls without waiting, so it ends when the messages that existed
// when it started are read.
func scan(ctx context.Context, s jetstream.Stream, cfg jetstream.OrderedConsumerConfig, max int, fn func(jetstream.Msg) bool) (truncated bool, err error) {
	cfg.InactiveThreshold = 0
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("ops: scan %s: %w", s.CachedInfo().Config.Name, err)
	}
	read := 0
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		batch, err := cons.FetchNoWait(min(scanBatch, max-read+1))
		if err != nil {
			return false, fmt.Errorf("ops: scan %s: %w", s.CachedInfo().Config.Name, err)
		}
		n, last := 0, false
		for m := range batch.Messages() {
			n++
			if read == max {
				return true, nil
			}
			read++
			if !fn(m) {
				return false, nil
			}
			if meta, err := m.Metadata(); err == nil && meta.NumPending == 0 {
				last = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return false, fmt.Errorf("ops: scan %s: %w", s.CachedInfo().Config.Name, err)
		}
		if n == 0 || last {
			return false, nil
		}
	}
}
