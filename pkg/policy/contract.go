package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/structured"
)

// MaxValidationRetries is the largest number of re-asks a call may ask for:
// each re-ask is a full provider call.
const MaxValidationRetries = 10

// Contract is what an answer must satisfy, compiled from a request: the
// JSON of a json_object / json_schema response format, and the arguments
// of tool calls against their tools' parameter schemas. It is immutable
// once built and safe for concurrent use.
type Contract struct {
	format  *llm.ResponseFormat           // json_object or json_schema; nil for text
	schema  *structured.Schema            // nil for json_object (any object)
	tools   map[string]*structured.Schema // by tool name; nil schema: no parameters given
	retries int                           // re-asks after the first try
}

// NewContract compiles the schemas of req. It returns nil when there is
// nothing to check (a plain text request without tools), so that such a
// request pays nothing, and a *RequestError for a schema that cannot be
// used or a retries outside [0, MaxValidationRetries]. retries is the
// call's validation_retries (nil: defRetries; negative defRetries: none).
func NewContract(req *llm.Request, retries *int, defRetries int) (*Contract, error) {
	rf := req.ResponseFormat
	structuredFormat := rf != nil && (rf.Type == llm.FormatJSONObject || rf.Type == llm.FormatJSONSchema)
	if !structuredFormat && len(req.Tools) == 0 {
		return nil, nil
	}
	c := &Contract{retries: max(defRetries, 0)}
	if retries != nil {
		if *retries < 0 || *retries > MaxValidationRetries {
			return nil, requestErrorf("validation_retries: %d is outside [0, %d]", *retries, MaxValidationRetries)
		}
		c.retries = *retries
	}
	if structuredFormat {
		c.format = rf
		if rf.Type == llm.FormatJSONSchema {
			s, err := structured.Compile(rf.Schema)
			if err != nil {
				return nil, requestErrorf("response_format.json_schema.schema: %v", schemaProblem(err))
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
					return nil, requestErrorf("tools[%d].function.parameters: %v", i, schemaProblem(err))
				}
			}
			c.tools[t.Name] = s
		}
	}
	return c, nil
}

// RequestError is a request that cannot be run as it is (wire code
// invalid_request): running it again cannot help.
type RequestError struct{ Message string }

func (e *RequestError) Error() string { return e.Message }

// WireCode implements WireCoder.
func (e *RequestError) WireCode() (string, bool) { return "invalid_request", false }

func requestErrorf(format string, args ...any) *RequestError {
	return &RequestError{Message: fmt.Sprintf(format, args...)}
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

// Violation is one thing wrong with an answer.
type Violation struct {
	Path    string // JSON pointer into the answer (or the arguments); "" for the whole
	Message string
	// ToolCall is the id of the tool call whose arguments are wrong; empty
	// for the answer's JSON.
	ToolCall string
}

// verdict is the check of one answer.
type verdict struct {
	ok        bool
	value     any            // the answer's JSON (format checks)
	raw       string         // its text; for a failed tool check, the first bad call's arguments
	toolCalls []llm.ToolCall // with cleaned arguments (tool checks)

	violations []Violation
	summary    string        // one line, for attempts and the error message
	reason     string        // multi-line, for the restart event
	reask      []llm.Message // what to append to the conversation
}

// check validates an answer: its tool calls when it made any, else its text
// when the request asked for JSON.
func (c *Contract) check(out *Outcome) *verdict {
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
	v := &verdict{raw: cmp.Or(raw, out.Text), reask: structured.ReaskMessages(out.Text, vs, err)}
	if err != nil {
		v.violations = []Violation{{Message: parseProblem(err)}}
		v.summary = "the answer is not valid JSON: " + parseProblem(err)
		v.reason = v.summary
		return v
	}
	for _, x := range vs {
		v.violations = append(v.violations, Violation{Path: x.Path, Message: x.Message})
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
func (c *Contract) checkToolCalls(out *Outcome) *verdict {
	v := &verdict{toolCalls: slices.Clone(out.ToolCalls)}
	problems := make([]string, len(out.ToolCalls)) // per call: the tool message, "" when fine
	var summaries, reasons []string
	for i := range v.toolCalls {
		tc := &v.toolCalls[i]
		label := fmt.Sprintf("tool call %s (%s)", cmp.Or(tc.ID, fmt.Sprint(i)), tc.Name)
		p := c.checkToolCall(tc, label)
		if p == nil {
			continue
		}
		v.violations = append(v.violations, p.violations...)
		problems[i] = p.message
		summaries = append(summaries, label+": "+p.summary)
		reasons = append(reasons, label+p.reason)
		v.raw = cmp.Or(v.raw, tc.Arguments)
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

// callProblem is what is wrong with one tool call.
type callProblem struct {
	violations []Violation
	message    string // the tool message of the re-ask
	summary    string // one line, after the call's label
	reason     string // appended to the call's label in the restart reason
}

// checkToolCall checks one call, cleaning its arguments (fences, prose)
// when they are right; nil when nothing is wrong.
func (c *Contract) checkToolCall(tc *llm.ToolCall, label string) *callProblem {
	sch, known := c.tools[tc.Name]
	if !known {
		msg := fmt.Sprintf("there is no tool named %q; the tools are %s", tc.Name, toolList(c.tools))
		return &callProblem{violations: []Violation{{Message: msg, ToolCall: tc.ID}},
			message: "Not executed: " + msg + ". Call one of them instead.", summary: msg, reason: ": " + msg}
	}
	if sch == nil {
		return nil // the tool declares no parameters: nothing to check
	}
	args := strings.TrimSpace(tc.Arguments)
	if args == "" {
		args = "{}" // some providers send nothing for a call without arguments
	}
	_, raw, vs, err := sch.ValidateText(args)
	switch {
	case err != nil:
		p := parseProblem(err)
		return &callProblem{violations: []Violation{{Message: p, ToolCall: tc.ID}},
			message: fmt.Sprintf("Not executed: the arguments of %s are not valid JSON: %s.\n\nCall %s again with arguments that are a JSON object matching its parameters schema.", label, p, tc.Name),
			summary: "arguments are not valid JSON: " + p, reason: ": arguments are not valid JSON: " + p}
	case len(vs) > 0:
		cp := &callProblem{
			message: fmt.Sprintf("Not executed: the arguments of %s do not match its parameters schema. Errors (JSON pointer path: problem):\n%s\n\nCall %s again with corrected arguments.",
				label, structured.FormatViolations(vs, structured.MaxReaskViolations), tc.Name),
			summary: oneLine(vs), reason: ":\n" + structured.FormatViolations(vs, structured.MaxReaskViolations)}
		for _, x := range vs {
			cp.violations = append(cp.violations, Violation{Path: x.Path, Message: x.Message, ToolCall: tc.ID})
		}
		return cp
	}
	tc.Arguments = raw // cleaned of fences or prose around it
	return nil
}

func toolList(tools map[string]*structured.Schema) string {
	names := make([]string, 0, len(tools))
	for n := range tools {
		names = append(names, fmt.Sprintf("%q", n))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
