package policy

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// StructuredOptions configure Structured.
type StructuredOptions struct {
	// Retries is how many times an answer that does not validate is
	// re-asked when the call does not say (Call.ValidationRetries).
	// Default 2; negative: none.
	Retries int
	// Now is the clock of the partial events' throttle (default time.Now).
	Now func() time.Time
}

// Structured returns the middleware that holds a call's answer to its
// contract (see NewContract): the JSON of a json_object / json_schema
// response format, the arguments of tool calls against their tools'
// schemas. An answer that does not validate is re-asked (the Instructor
// pattern): the answer and what was wrong with it are appended to the
// conversation, and a restart event (code validation_failed) tells
// streaming callers to discard the invalid text. The Outcome spans every
// try: all attempts (a try whose answer failed is marked
// validation_failed), usage and cost summed, the last try's answer, and
// its JSON value in Outcome.JSON. When no try validates, the error is a
// *ValidationError. A call with Partials gets EventPartial events: the
// object parsed so far, a few per second. A plain text call without tools
// passes through at no cost.
func Structured(o StructuredOptions) Middleware {
	o.Retries = cmp.Or(o.Retries, 2)
	if o.Now == nil {
		o.Now = time.Now
	}
	return func(next Executor) Executor { return &structuredExec{next: next, o: o} }
}

type structuredExec struct {
	next Executor
	o    StructuredOptions
}

func (s *structuredExec) Execute(ctx context.Context, c *Call, emit func(Event)) (*Outcome, error) {
	con := c.Contract
	if con == nil {
		var err error
		if con, err = NewContract(c.Request, c.ValidationRetries, s.o.Retries); err != nil {
			return &Outcome{Group: c.Group}, err
		}
	}
	if con == nil {
		return s.next.Execute(ctx, c, emit)
	}
	if emit == nil {
		emit = func(Event) {}
	}
	var parts *partials
	if c.Partials && con.format != nil {
		parts = newPartials(emit, s.o.Now)
		emit = parts.emit
	}
	conv := *c.Request
	conv.Messages = slices.Clone(c.Request.Messages)
	call := *c
	call.Request, call.Contract = &conv, nil
	total := &Outcome{Group: c.Group}
	for try := 1; ; try++ {
		out, err := s.next.Execute(ctx, &call, emit)
		merge(total, out)
		if err != nil {
			return total, err
		}
		parts.flush()
		v := con.check(out)
		if v.ok {
			v.apply(total)
			return total, nil
		}
		bad := &invalidAnswer{summary: v.summary}
		if n := len(total.Attempts); n > 0 {
			a := &total.Attempts[n-1]
			a.Err, a.Code = bad, "validation_failed"
		}
		if try > con.retries {
			return total, &ValidationError{Tries: try, Summary: v.summary, Violations: v.violations, Raw: v.raw}
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
		emit(Event{Type: EventRestart, Group: total.Group, Code: "validation_failed", Reason: v.reason, Err: bad})
		conv.Messages = append(conv.Messages, v.reask...)
	}
}

// apply puts a validated answer into the outcome: its JSON value and the
// JSON text without fences or prose, the tool calls' cleaned arguments.
func (v *verdict) apply(out *Outcome) {
	if v.value != nil {
		out.JSON, out.Text = v.value, v.raw
	}
	for i := range out.ToolCalls {
		if i < len(v.toolCalls) {
			out.ToolCalls[i].Arguments = v.toolCalls[i].Arguments
		}
	}
}

// merge adds one try's outcome to the total.
func merge(total, out *Outcome) {
	if out == nil {
		return
	}
	total.Text, total.ToolCalls, total.FinishReason = out.Text, out.ToolCalls, out.FinishReason
	total.Group = cmp.Or(out.Group, total.Group)
	total.Deployment, total.Model, total.Provider, total.TTFT = out.Deployment, out.Model, out.Provider, out.TTFT
	total.Usage = total.Usage.Add(out.Usage)
	total.CostUSD += out.CostUSD
	total.Attempts = append(total.Attempts, out.Attempts...)
	total.Retries += out.Retries
	total.Fallbacks += out.Fallbacks
}

// invalidAnswer marks the attempt of a try whose answer did not validate.
type invalidAnswer struct{ summary string }

func (e *invalidAnswer) Error() string { return e.summary }

// WireCode implements WireCoder.
func (e *invalidAnswer) WireCode() (string, bool) { return "validation_failed", false }

// ValidationError is the failure of a call none of whose answers validated
// (wire code validation_failed).
type ValidationError struct {
	Tries      int    // answers checked
	Summary    string // what was wrong with the last one, on one line
	Violations []Violation
	Raw        string // the last answer's text (or the first bad call's arguments)
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("no valid answer in %d tries; last: %s", e.Tries, e.Summary)
}

// WireCode implements WireCoder.
func (e *ValidationError) WireCode() (string, bool) { return "validation_failed", false }
