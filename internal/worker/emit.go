package worker

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// emitter publishes a job's events on <reply>.events with core NATS, in
// order, numbering them. Events of a request with stream: false are counted
// but not sent.
type emitter struct {
	j       *job
	subject string
	seq     uint64
	on      bool
	ttft    time.Duration
	failed  bool
	partial *partials // nil unless a streamed request asks for JSON
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

// policy is the router's emit function.
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
	be := bus.Event{Type: bus.EventType(ev.Type), Deployment: ev.Deployment, Delta: ev.Delta, Code: code, Reason: ev.Reason}
	if ev.Type == policy.EventFallback {
		be.Group = ev.Group
	}
	if tc := ev.ToolCall; tc != nil {
		be.ToolCall = &bus.ToolCallDelta{Index: tc.Index, ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}
	}
	e.send(&be)
	if e.partial != nil && ev.Type == policy.EventChunk {
		e.partial.add(e, ev.Delta)
	}
}

func (e *emitter) send(ev *bus.Event) {
	if ev.Type == bus.EventRestart {
		e.j.countRestart(ev.Code)
	}
	if !e.on {
		return
	}
	if ev.Type == bus.EventRestart && e.partial != nil {
		e.partial.reset()
	}
	if ev.Reason != "" {
		ev.Reason = e.j.w.scrub(ev.Reason)
	}
	e.seq++
	ev.ID = e.j.id
	ev.Seq = e.seq
	ev.Attempt = e.j.attempt
	data, err := e.j.enc.Marshal(ev)
	if err == nil {
		// No headers: an event is the hottest message of a job, headers cost
		// as much as the rest of it, and the wire contract tells the
		// encoding by the first byte ('{' is JSON) when there is none.
		if e.ttl != nil {
			err = e.j.w.nc.PublishMsg(&nats.Msg{Subject: e.subject, Data: data, Header: e.ttl})
		} else {
			err = e.j.w.nc.Publish(e.subject, data)
		}
	}
	if err != nil && !e.failed {
		// Events are best effort; the result is not. Log once per job.
		e.failed = true
		e.j.w.log.Warn("event publish failed", slog.String("job", e.j.id), slog.Any("error", err))
	}
}
