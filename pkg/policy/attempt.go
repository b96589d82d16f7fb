package policy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
	"github.com/switchyard/switchyard/pkg/llm/structured"
)

// attempt makes one call to d, admitted with p, and records it in the
// outcome.
func (x *execution) attempt(ctx context.Context, g *group, d *deployment, p *permit) (*Outcome, error) {
	start := time.Now()
	cont := g.opts.MidStream == MidStreamContinue && x.prefix != "" && textOnly(x.req)
	if x.streamed && !cont {
		x.emit(Event{Type: EventRestart, Group: g.Name, Deployment: d.Name,
			Code: llm.KindOf(x.streamErr).String(), Reason: errText(x.streamErr), Err: x.streamErr})
		x.prefix = ""
	}
	res, sent, err := x.timed(ctx, g, d, cont)
	d.state.release()
	// A call that ended because its caller did (the job's deadline, a
	// cancel, a shutdown) says nothing of the deployment, whatever error
	// the provider's stream reported for it (the mock and the SDKs report a
	// passed deadline as a timeout).
	d.state.record(err, ctx.Err() != nil)
	p.done(err, ctx.Err() != nil)
	if ctx.Err() == nil {
		x.cooldownAfter(g, d, err)
	}
	a := Attempt{Group: g.Name, Deployment: d.Name, Model: d.Model, Provider: d.info.Provider, Err: err, Duration: time.Since(start)}
	if err != nil {
		a.Code = llm.KindOf(err).String()
		x.streamed = x.streamed && cont || sent
		x.streamErr = err
	}
	x.out.Attempts = append(x.out.Attempts, a)
	return res, err
}

func textOnly(req *llm.Request) bool {
	rf := req.ResponseFormat
	return len(req.Tools) == 0 && (rf == nil || rf.Type == "" || rf.Type == llm.FormatText)
}

// timed makes the call under d's total timeout, a failsafe-go timeout
// policy: its context ends the call, and its ErrExceeded becomes a timeout.
func (x *execution) timed(ctx context.Context, g *group, d *deployment, cont bool) (*Outcome, bool, error) {
	if d.total == nil {
		return x.call(ctx, g, d, cont)
	}
	var sent bool
	out, err := failsafe.With(d.total).WithContext(ctx).GetWithExecution(func(e failsafe.Execution[*Outcome]) (*Outcome, error) {
		out, s, err := x.call(e.Context(), g, d, cont)
		sent = s // the timeout runs the call on this goroutine
		return out, err
	})
	if errors.Is(err, timeout.ErrExceeded) {
		err = &llm.Error{Kind: llm.KindTimeout, MidStream: sent, Message: "attempt exceeded its total timeout", Err: err}
	}
	return out, sent, err
}

// call makes one streamed call under the stream's watchdog; sent reports
// whether any output was emitted.
func (x *execution) call(ctx context.Context, g *group, d *deployment, cont bool) (*Outcome, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wd := startWatchdog(&d.watch, cancel)
	defer wd.stop()
	call := *x.requestFor(d)
	call.Model, call.MaxOutput = d.Model, d.info.MaxOutput
	if cont {
		call.Messages = append(slices.Clone(call.Messages), llm.Message{Role: llm.RoleAssistant, Content: x.prefix})
	}
	start := time.Now()
	s, err := d.Provider.Stream(ctx, &call)
	if err != nil {
		return nil, false, wd.err(err, false)
	}
	defer s.Close()
	x.emit(Event{Type: EventStart, Group: g.Name, Deployment: d.Name})
	r := x.read(s, g, d, wd, start)
	if err := s.Err(); err != nil {
		x.carry(r, cont)
		return nil, r.sent, wd.err(err, r.sent)
	}
	if !r.finished {
		x.carry(r, cont)
		return nil, r.sent, &llm.Error{Kind: llm.KindUnavailable, MidStream: r.sent, Message: "stream ended without an end marker"}
	}
	out := r.out
	out.Text = r.text.String()
	if cont {
		out.Text = x.prefix + out.Text
	}
	out.ToolCalls = r.tools.calls()
	out.CostUSD = catalog.Cost(d.info, out.Usage)
	return out, r.sent, nil
}

// streamRead is what one stream produced.
type streamRead struct {
	out      *Outcome
	text     strings.Builder
	tools    toolAssembler
	sent     bool // any output was emitted
	finished bool // the end marker (a finish reason) arrived
}

// read drains s, emitting its chunks and tool-call fragments as events.
func (x *execution) read(s llm.Stream, g *group, d *deployment, wd *watchdog, start time.Time) *streamRead {
	r := &streamRead{out: &Outcome{Deployment: d.Name, Model: d.Model, Provider: d.info.Provider}}
	for first := true; s.Next(); first = false {
		c := s.Current()
		if first {
			r.out.TTFT = time.Since(start)
			d.state.observe(r.out.TTFT)
		}
		wd.chunk()
		if c.Delta != "" {
			r.sent = true
			r.text.WriteString(c.Delta)
			x.emit(Event{Type: EventChunk, Group: g.Name, Deployment: d.Name, Delta: c.Delta})
		}
		for i := range c.ToolCalls {
			r.sent = true
			r.tools.add(c.ToolCalls[i])
			x.emit(Event{Type: EventToolCall, Group: g.Name, Deployment: d.Name, ToolCall: &c.ToolCalls[i]})
		}
		if c.Usage != nil {
			r.out.Usage = *c.Usage
		}
		if c.FinishReason != "" {
			r.out.FinishReason = c.FinishReason
			r.finished = true
		}
	}
	return r
}

// carry keeps the text of a failed stream for MidStreamContinue.
func (x *execution) carry(r *streamRead, cont bool) {
	if cont || r.sent {
		x.prefix += r.text.String()
	}
}

// requestFor returns the request as d is sent it. This is the one place
// where the request differs per deployment: a json_schema request goes as is
// to a deployment whose model takes the schema natively, and with the schema
// put into the system prompt (structured.WithInstruction, the response
// format kept) to one whose model does not. Either way the answer is
// validated after the call.
func (x *execution) requestFor(d *deployment) *llm.Request {
	rf := x.req.ResponseFormat
	if d.info.JSONSchema || rf == nil || rf.Type != llm.FormatJSONSchema {
		return x.req
	}
	if x.instructed == nil {
		x.instructed = structured.WithInstruction(x.req)
	}
	return x.instructed
}
