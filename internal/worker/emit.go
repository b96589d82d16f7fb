package worker

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// emitter turns the chain's events into the job's wire events, which reply
// publishes (see send) on <reply>.events, in order, numbered. Events of a
// request with stream: false are counted but not sent.
type emitter struct {
	j       *job
	subject string
	seq     uint64
	on      bool
	ttft    time.Duration
	failed  bool
	// ttl is set when events are stored (durable events, default reply
	// prefix): each carries a Nats-TTL header so it expires long before
	// the job's result.
	ttl nats.Header
}

func newEmitter(j *job) *emitter {
	e := &emitter{j: j, subject: bus.EventsSubject(j.reply), on: j.req.Streaming()}
	if st := j.w.cfg.Streams; st.DurableEvents && j.subj.InResults(j.reply) {
		e.ttl = nats.Header{jetstream.MsgTTLHeader: []string{st.EventsMaxAge.String()}}
	}
	return e
}

// policy is the chain's emit function.
func (e *emitter) policy(ev policy.Event) {
	if ev.Type == policy.EventChunk {
		if e.j.pastDeadline(e.j.w.cfg.Now()) {
			// Read after the deadline: not streamed on, and the call is
			// stopped (the job answers deadline_exceeded).
			e.j.cancel(errPastDeadline)
			return
		}
		if e.ttft == 0 {
			e.ttft = e.j.w.cfg.Now().Sub(e.j.picked)
		}
	}
	code := ev.Code
	if ev.Err != nil {
		// The code the result's attempt for the same failure carries.
		c, _ := codeOf(ev.Err)
		code = string(c)
	}
	if !e.on {
		if ev.Type == policy.EventRestart {
			e.j.countRestart(code)
		}
		return
	}
	be := bus.Event{Type: bus.EventType(ev.Type), Deployment: ev.Deployment, Delta: ev.Delta, Code: code, Reason: ev.Reason, Partial: ev.Partial}
	if ev.Type == policy.EventFallback {
		be.Group = ev.Group
	}
	if tc := ev.ToolCall; tc != nil {
		be.ToolCall = &bus.ToolCallDelta{Index: tc.Index, ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}
	}
	e.send(&be)
}
