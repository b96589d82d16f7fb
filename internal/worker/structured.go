package worker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/structured"
	"github.com/switchyard/switchyard/pkg/policy"
)

// MaxValidationRetries is the largest validation_retries a request may ask
// for: each re-ask is a full provider call.
const MaxValidationRetries = 10

// contract is what a request's output must satisfy, compiled at intake: the
// JSON of a json_object / json_schema response format, and the arguments of
// tool calls against their tools' parameter schemas.
type contract struct {
	format  *llm.ResponseFormat           // json_object or json_schema; nil for text
	schema  *structured.Schema            // nil for json_object (any object)
	tools   map[string]*structured.Schema // by tool name; nil schema: no parameters given
	retries int                           // re-asks after the first try
}

// newContract compiles the schemas of req. It returns nil when there is
// nothing to check (a plain text request without tools), so that such a
// request pays nothing, and an *invalid error for a schema that cannot be
// used or a bad validation_retries.
func newContract(req *llm.Request, wire *bus.Request, defRetries int) (*contract, error) {
	rf := req.ResponseFormat
	structuredFormat := rf != nil && (rf.Type == llm.FormatJSONObject || rf.Type == llm.FormatJSONSchema)
	if !structuredFormat && len(req.Tools) == 0 {
		return nil, nil
	}
	c := &contract{retries: max(defRetries, 0)}
	if n := wire.ValidationRetries; n != nil {
		if *n < 0 || *n > MaxValidationRetries {
			return nil, invalidf("validation_retries: %d is outside [0, %d]", *n, MaxValidationRetries)
		}
		c.retries = *n
	}
	if structuredFormat {
		c.format = rf
		if rf.Type == llm.FormatJSONSchema {
			s, err := structured.Compile(rf.Schema)
			if err != nil {
				return nil, invalidf("response_format.json_schema.schema: %v", schemaProblem(err))
			}
			c.schema = s
		}
	}
	if len(req.Tools) > 0 {
		c.tools = make(map[string]*structured.Schema, len(req.Tools))
		for i, t := range req.Tools {
			var s *structured.Schema
			if len(t.Parameters) > 0 {
				var err error
				if s, err = structured.Compile(t.Parameters); err != nil {
					return nil, invalidf("tools[%d].function.parameters: %v", i, schemaProblem(err))
				}
			}
			c.tools[t.Name] = s
		}
	}
	return c, nil
}

// schemaProblem is the requester-facing text of a compile error.
func schemaProblem(err error) string {
	if se, ok := errors.AsType[*structured.SchemaError](err); ok {
		if se.Detail == "" {
			return "bad JSON schema: " + se.Reason
		}
		return "bad JSON schema: " + se.Reason + ": " + se.Detail
	}
	return err.Error()
}

// violation is one entry of a validation_failed result's details.
type violation struct {
	Path    string `json:"path" msgpack:"path"`
	Message string `json:"message" msgpack:"message"`
	// ToolCall is the id of the tool call whose arguments are wrong; empty
	// for the answer's JSON.
	ToolCall string `json:"tool_call,omitempty" msgpack:"tool_call,omitempty"`
}

// verdict is the check of one answer.
type verdict struct {
	ok        bool
	value     any            // the answer's JSON (format checks)
	raw       string         // its text; for a failed tool check, the first bad call's arguments
	toolCalls []llm.ToolCall // with cleaned arguments (tool checks)

	violations []violation
	summary    string        // one line, for attempts and the error message
	reason     string        // multi-line, for the restart event
	reask      []llm.Message // what to append to the conversation
	tries      int           // answers checked, this one included
}

// validationError marks a try whose answer did not validate. It unwraps to
// a validation_failed *bus.Error so that codeOf reports its code.
type validationError struct{ summary string }

func (e *validationError) Error() string { return e.summary }
func (e *validationError) Unwrap() error {
	return &bus.Error{Code: bus.CodeValidationFailed, Message: e.summary}
}

// check validates an answer: its tool calls when it made any, else its text
// when the request asked for JSON.
func (c *contract) check(out *policy.Outcome) *verdict {
	if len(out.ToolCalls) > 0 && c.tools != nil {
		return c.checkToolCalls(out)
	}
	if c.format == nil {
		return &verdict{ok: true}
	}
	value, raw, vs, err := c.schema.ValidateText(out.Text)
	if err == nil && len(vs) == 0 {
		return &verdict{ok: true, value: value, raw: raw}
	}
	v := &verdict{raw: cmpOr(raw, out.Text), reask: structured.ReaskMessages(out.Text, vs, err)}
	if err != nil {
		v.violations = []violation{{Message: parseProblem(err)}}
		v.summary = "the answer is not valid JSON: " + parseProblem(err)
		v.reason = v.summary
		return v
	}
	for _, x := range vs {
		v.violations = append(v.violations, violation{Path: x.Path, Message: x.Message})
	}
	v.summary = "the answer does not match the schema: " + oneLine(vs)
	v.reason = structured.FormatViolations(vs, structured.MaxReaskViolations)
	return v
}

// parseProblem drops the library's prefix from a ValidateText error.
func parseProblem(err error) string {
	if errors.Is(err, structured.ErrNoJSON) {
		return "no JSON found in the answer"
	}
	return strings.TrimPrefix(err.Error(), "structured: ")
}

// oneLine joins violations on one line, at most 10 of them.
func oneLine(vs []structured.Violation) string {
	const limit = 10
	parts := make([]string, 0, min(len(vs), limit)+1)
	for i, v := range vs {
		if i == limit {
			parts = append(parts, fmt.Sprintf("and %d more", len(vs)-i))
			break
		}
		parts = append(parts, v.String())
	}
	return strings.Join(parts, "; ")
}

// checkToolCalls validates each call's name and arguments. The re-ask
// answers every call of the turn with a tool message (as the chat APIs
// require after an assistant message with tool calls): the errors of a bad
// call, or that a good one was not executed because of the others.
func (c *contract) checkToolCalls(out *policy.Outcome) *verdict {
	v := &verdict{toolCalls: slices.Clone(out.ToolCalls)}
	problems := make([]string, len(out.ToolCalls)) // per call: the tool message, "" when fine
	var summaries, reasons []string
	for i := range v.toolCalls {
		tc := &v.toolCalls[i]
		label := fmt.Sprintf("tool call %s (%s)", cmpOr(tc.ID, fmt.Sprint(i)), tc.Name)
		sch, known := c.tools[tc.Name]
		if !known {
			msg := fmt.Sprintf("there is no tool named %q; the tools are %s", tc.Name, toolList(c.tools))
			v.violations = append(v.violations, violation{Message: msg, ToolCall: tc.ID})
			problems[i] = "Not executed: " + msg + ". Call one of them instead."
			summaries = append(summaries, label+": "+msg)
			reasons = append(reasons, label+": "+msg)
			v.raw = cmpOr(v.raw, tc.Arguments)
			continue
		}
		if sch == nil {
			continue // the tool declares no parameters: nothing to check
		}
		args := strings.TrimSpace(tc.Arguments)
		if args == "" {
			args = "{}" // some providers send nothing for a call without arguments
		}
		_, raw, vs, err := sch.ValidateText(args)
		switch {
		case err != nil:
			p := parseProblem(err)
			v.violations = append(v.violations, violation{Message: p, ToolCall: tc.ID})
			problems[i] = fmt.Sprintf("Not executed: the arguments of %s are not valid JSON: %s.\n\nCall %s again with arguments that are a JSON object matching its parameters schema.", label, p, tc.Name)
			summaries = append(summaries, label+": arguments are not valid JSON: "+p)
			reasons = append(reasons, label+": arguments are not valid JSON: "+p)
			v.raw = cmpOr(v.raw, tc.Arguments)
		case len(vs) > 0:
			for _, x := range vs {
				v.violations = append(v.violations, violation{Path: x.Path, Message: x.Message, ToolCall: tc.ID})
			}
			problems[i] = fmt.Sprintf("Not executed: the arguments of %s do not match its parameters schema. Errors (JSON pointer path: problem):\n%s\n\nCall %s again with corrected arguments.",
				label, structured.FormatViolations(vs, structured.MaxReaskViolations), tc.Name)
			summaries = append(summaries, label+": "+oneLine(vs))
			reasons = append(reasons, label+":\n"+structured.FormatViolations(vs, structured.MaxReaskViolations))
			v.raw = cmpOr(v.raw, tc.Arguments)
		default:
			tc.Arguments = raw // cleaned of fences or prose around it
		}
	}
	if len(summaries) == 0 {
		v.ok = true
		return v
	}
	v.summary = "invalid tool call arguments: " + strings.Join(summaries, "; ")
	v.reason = strings.Join(reasons, "\n")
	v.reask = append(v.reask, llm.Message{Role: llm.RoleAssistant, Content: out.Text, ToolCalls: out.ToolCalls})
	for i, tc := range out.ToolCalls {
		msg := problems[i]
		if msg == "" {
			msg = "Not executed: other tool calls of this turn had invalid arguments. Make this call again together with the corrected ones."
		}
		v.reask = append(v.reask, llm.Message{Role: llm.RoleTool, ToolCallID: tc.ID, Name: tc.Name, Content: msg})
	}
	return v
}

func toolList(tools map[string]*structured.Schema) string {
	names := make([]string, 0, len(tools))
	for n := range tools {
		names = append(names, fmt.Sprintf("%q", n))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// executeValidated runs req and checks the answer against c, re-asking (the
// Instructor pattern) up to c.retries times: the model's answer and what was
// wrong with it are appended to the conversation, and a restart event tells
// streaming clients to discard the invalid text. The returned Outcome spans
// every try: all attempts (a try whose answer failed validation is marked
// validation_failed), usage and cost summed, the answer of the last try.
// The verdict is that of the last checked answer; nil when Execute failed.
func (j *job) executeValidated(ctx context.Context, req *llm.Request, c *contract, em *emitter) (*policy.Outcome, *verdict, error) {
	conv := *req
	conv.Messages = slices.Clone(req.Messages)
	total := &policy.Outcome{Group: j.group}
	for try := 0; ; try++ {
		out, err := j.exec.Execute(ctx, &policy.Call{Group: j.group, Request: &conv}, em.policy)
		merge(total, out)
		if err != nil {
			return total, nil, err
		}
		em.flushPartial()
		v := c.check(out)
		v.tries = try + 1
		if v.ok {
			return total, v, nil
		}
		if n := len(total.Attempts); n > 0 {
			a := &total.Attempts[n-1]
			a.Err, a.Code = &validationError{summary: v.summary}, string(bus.CodeValidationFailed)
		}
		if try >= c.retries {
			return total, v, nil
		}
		if err := ctx.Err(); err != nil {
			return total, nil, err
		}
		em.send(&bus.Event{Type: bus.EventRestart, Code: string(bus.CodeValidationFailed), Reason: v.reason})
		conv.Messages = append(conv.Messages, v.reask...)
	}
}

// merge adds one try's outcome to the total.
func merge(total, out *policy.Outcome) {
	if out == nil {
		return
	}
	total.Text, total.ToolCalls, total.FinishReason = out.Text, out.ToolCalls, out.FinishReason
	total.Group = cmpOr(out.Group, total.Group)
	total.Deployment, total.Model, total.Provider, total.TTFT = out.Deployment, out.Model, out.Provider, out.TTFT
	total.Usage = total.Usage.Add(out.Usage)
	total.CostUSD += out.CostUSD
	total.Attempts = append(total.Attempts, out.Attempts...)
	total.Retries += out.Retries
	total.Fallbacks += out.Fallbacks
}

// apply puts a verdict into the result: the validated JSON, or the
// validation_failed error with the last violations and raw text.
func (v *verdict) apply(res *bus.Result) {
	if v.ok {
		if v.value != nil {
			res.JSON, res.Text = v.value, v.raw
		}
		for i := range res.ToolCalls {
			if i < len(v.toolCalls) {
				res.ToolCalls[i].Function.Arguments = v.toolCalls[i].Arguments
			}
		}
		return
	}
	res.Status = bus.StatusError
	res.Error = &bus.Error{
		Code:    bus.CodeValidationFailed,
		Message: fmt.Sprintf("no valid answer in %d tries; last: %s", v.tries, v.summary),
		Details: map[string]any{"violations": v.violations, "raw": v.raw},
	}
}

// enablePartials makes em send partial events for a streamed request that
// asks for JSON. Plain text requests never get a partials state.
func (e *emitter) enablePartials(c *contract) {
	if c != nil && c.format != nil && e.on {
		e.partial = &partials{throttle: structured.NewThrottle(structured.DefaultPartialsPerSecond, e.j.w.cfg.Now)}
	}
}

// flushPartial sends the last held-back partial, if any.
func (e *emitter) flushPartial() {
	if e.partial != nil {
		e.partial.flush(e)
	}
}

// partials turns the text of a streamed schema request into `partial`
// events: the best-effort object parsed so far, at most a few per second and
// only when it changed. The text is parsed only when the throttle lets an
// event go, so a fast stream costs a handful of parses, not one per chunk.
type partials struct {
	text     strings.Builder
	throttle *structured.Throttle
	last     any
	has      bool
}

func (p *partials) add(e *emitter, delta string) {
	p.text.WriteString(delta)
	if p.throttle.Offer(true) {
		p.emit(e)
	}
}

// flush sends the parse of the whole text when a change was held back.
func (p *partials) flush(e *emitter) {
	if p.throttle.Flush() {
		p.emit(e)
	}
}

func (p *partials) emit(e *emitter) {
	v, ok := structured.ParsePartial(p.text.String())
	if !ok || (p.has && reflect.DeepEqual(v, p.last)) {
		return
	}
	p.last, p.has = v, true
	e.send(&bus.Event{Type: bus.EventPartial, Partial: v})
}

// reset forgets the text: a restart event discarded it.
func (p *partials) reset() {
	p.text.Reset()
	p.last, p.has = nil, false
}
