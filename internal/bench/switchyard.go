package bench

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
)

// Prompt returns a deterministic user prompt of n bytes (at least 1): words
// of English-like text, so that token estimates behave as with real input.
func Prompt(n int) string {
	const text = "switchyards sort freight cars onto tracks by destination while the yard master watches the hump and the retarders slow each car "
	n = max(n, 1)
	var b strings.Builder
	b.Grow(n)
	for b.Len() < n {
		b.WriteString(text[:min(len(text), n-b.Len())])
	}
	return b.String()
}

// SwitchyardJob returns a JobFunc that submits prompt to group through c and
// reads the job's events and result. With stream false the job asks for the
// result only. onChunk, when not nil, is called with the arrival time of
// every chunk event (from the job's goroutine).
func SwitchyardJob(c *bus.Client, group, prompt string, stream bool, onChunk func(i int, at time.Time)) JobFunc {
	return func(ctx context.Context, i int) Outcome {
		req := &bus.Request{Messages: []bus.Message{{Role: "user", Content: bus.Text(prompt)}}}
		if !stream {
			req.Stream = &stream
		}
		t0 := time.Now()
		job, err := c.Publish(ctx, group, req)
		if err != nil {
			return Outcome{Code: codeOf(err)}
		}
		defer job.Close()
		var o Outcome
		for {
			ev, res, err := job.Next(ctx)
			if err != nil {
				o.Code = codeOf(err)
				return o
			}
			if res != nil {
				o.Queued = time.Duration(res.Timings.QueuedMS) * time.Millisecond
				if res.Status != bus.StatusOK {
					o.Code = string(bus.CodeInternal)
					if res.Error != nil {
						o.Code = string(res.Error.Code)
					}
				}
				return o
			}
			if ev.Type == bus.EventChunk {
				now := time.Now()
				if o.FirstChunk == 0 {
					o.FirstChunk = now.Sub(t0)
				}
				if onChunk != nil {
					onChunk(i, now)
				}
			}
		}
	}
}

// codeOf classifies a client-side error.
func codeOf(err error) string {
	if be, ok := errors.AsType[*bus.Error](err); ok {
		return string(be.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return CodeNoResult
	}
	return CodeTransport
}
