package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
)

// ErrUnknownGroup is returned by Execute for a group the router does not serve.
var ErrUnknownGroup = errors.New("policy: unknown group")

// Router executes requests against model groups. It is safe for concurrent use.
type Router struct {
	groups map[string]*Group
	now    func() time.Time
}

// NewRouter returns a router over groups.
func NewRouter(groups []Group) (*Router, error) {
	r := &Router{groups: make(map[string]*Group, len(groups)), now: time.Now}
	for i := range groups {
		g := groups[i]
		if g.Name == "" {
			return nil, errors.New("policy: group without a name")
		}
		if len(g.Deployments) == 0 {
			return nil, fmt.Errorf("policy: group %q has no deployments", g.Name)
		}
		if _, dup := r.groups[g.Name]; dup {
			return nil, fmt.Errorf("policy: group %q defined twice", g.Name)
		}
		r.groups[g.Name] = &g
	}
	return r, nil
}

// HasGroup reports whether the router serves group.
func (r *Router) HasGroup(name string) bool {
	_, ok := r.groups[name]
	return ok
}

// Groups returns the names of the groups the router serves.
func (r *Router) Groups() []string {
	names := make([]string, 0, len(r.groups))
	for n := range r.groups {
		names = append(names, n)
	}
	return names
}

// Execute runs req against group, trying its deployments in order until one
// answers. emit receives the events of every attempt.
func (r *Router) Execute(ctx context.Context, group string, req *llm.Request, emit func(Event)) (*Outcome, error) {
	g, ok := r.groups[group]
	if !ok {
		return &Outcome{Group: group}, fmt.Errorf("%w: %q", ErrUnknownGroup, group)
	}
	out := &Outcome{Group: group}
	var lastErr error
	streamed := false
	for i, d := range g.Deployments {
		if i > 0 {
			emit(Event{Type: EventFallback, Deployment: d.Name, Code: llm.KindOf(lastErr).String(), Reason: errText(lastErr)})
		}
		if streamed {
			emit(Event{Type: EventRestart, Deployment: d.Name, Code: llm.KindOf(lastErr).String(), Reason: errText(lastErr)})
			streamed = false
		}
		start := r.now()
		res, sent, err := r.call(ctx, d, req, emit, start)
		out.Attempts = append(out.Attempts, Attempt{Group: group, Deployment: d.Name, Model: d.Model, Err: err, Duration: r.now().Sub(start)})
		if err == nil {
			res.Attempts = out.Attempts
			res.Group = group
			return res, nil
		}
		streamed = sent
		lastErr = err
		if ctx.Err() != nil || !llm.KindOf(err).Retryable() {
			break
		}
	}
	return out, lastErr
}

// call makes one streamed call; sent reports whether any output was emitted.
func (r *Router) call(ctx context.Context, d Deployment, req *llm.Request, emit func(Event), start time.Time) (out *Outcome, sent bool, err error) {
	call := *req
	call.Model = d.Model
	s, err := d.Provider.Stream(ctx, &call)
	if err != nil {
		return nil, false, err
	}
	defer s.Close()
	emit(Event{Type: EventStart, Deployment: d.Name})
	out = &Outcome{Deployment: d.Name, Model: d.Model}
	var text strings.Builder
	tools := toolAssembler{}
	finished := false
	for s.Next() {
		c := s.Current()
		if c.Delta != "" {
			if !sent {
				out.TTFT = r.now().Sub(start)
			}
			sent = true
			text.WriteString(c.Delta)
			emit(Event{Type: EventChunk, Deployment: d.Name, Delta: c.Delta})
		}
		for i := range c.ToolCalls {
			sent = true
			tools.add(c.ToolCalls[i])
			emit(Event{Type: EventToolCall, Deployment: d.Name, ToolCall: &c.ToolCalls[i]})
		}
		if c.Usage != nil {
			out.Usage = *c.Usage
		}
		if c.FinishReason != "" {
			out.FinishReason = c.FinishReason
			finished = true
		}
	}
	if err := s.Err(); err != nil {
		return nil, sent, err
	}
	if !finished {
		return nil, sent, &llm.Error{Kind: llm.KindUnavailable, MidStream: sent, Message: "stream ended without an end marker"}
	}
	out.Text = text.String()
	out.ToolCalls = tools.calls()
	return out, sent, nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// toolAssembler joins streamed tool-call fragments into whole calls.
type toolAssembler struct {
	order []int
	byIdx map[int]*llm.ToolCall
}

func (a *toolAssembler) add(d llm.ToolCallDelta) {
	if a.byIdx == nil {
		a.byIdx = map[int]*llm.ToolCall{}
	}
	tc, ok := a.byIdx[d.Index]
	if !ok {
		tc = &llm.ToolCall{}
		a.byIdx[d.Index] = tc
		a.order = append(a.order, d.Index)
	}
	if d.ID != "" {
		tc.ID = d.ID
	}
	if d.Name != "" {
		tc.Name = d.Name
	}
	tc.Arguments += d.Arguments
}

func (a *toolAssembler) calls() []llm.ToolCall {
	if len(a.order) == 0 {
		return nil
	}
	out := make([]llm.ToolCall, 0, len(a.order))
	for _, i := range a.order {
		out = append(out, *a.byIdx[i])
	}
	return out
}
