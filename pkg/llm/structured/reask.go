package structured

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/pkg/llm"
)

// MaxReaskViolations is how many violations a re-ask message lists; the
// rest are counted, not shown, so a badly wrong answer does not blow up the
// prompt.
const MaxReaskViolations = 20

// FormatViolations renders violations one per line ("- at "/a/0": msg"),
// at most limit of them (all when limit <= 0), followed by "- ... and N more"
// when some were left out. It returns "" for none.
func FormatViolations(vs []Violation, limit int) string {
	if len(vs) == 0 {
		return ""
	}
	shown := vs
	if limit > 0 && len(vs) > limit {
		shown = vs[:limit]
	}
	var sb strings.Builder
	for i, v := range shown {
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString("- ")
		sb.WriteString(v.String())
	}
	if n := len(vs) - len(shown); n > 0 {
		fmt.Fprintf(&sb, "\n- ... and %d more", n)
	}
	return sb.String()
}

// ReaskMessages returns the two messages to append to a conversation to ask
// the model for a corrected answer (the Instructor pattern): the model's own
// answer as an assistant message, then a user message listing what was
// wrong (parseErr when the answer held no valid JSON, else the violations)
// and asking for only the corrected JSON.
func ReaskMessages(answer string, violations []Violation, parseErr error) []llm.Message {
	var sb strings.Builder
	switch {
	case parseErr != nil:
		sb.WriteString("Your previous answer did not contain valid JSON: ")
		sb.WriteString(parseErr.Error())
		sb.WriteString(".\n\n")
	case len(violations) > 0:
		sb.WriteString("Your previous answer did not match the required JSON Schema. Errors (JSON pointer path: problem):\n")
		sb.WriteString(FormatViolations(violations, MaxReaskViolations))
		sb.WriteString("\n\n")
	default:
		sb.WriteString("Your previous answer was not accepted.\n\n")
	}
	sb.WriteString("Reply again with only the corrected JSON that conforms to the schema: no explanations, no markdown code fences.")
	return []llm.Message{
		{Role: llm.RoleAssistant, Content: answer},
		{Role: llm.RoleUser, Content: sb.String()},
	}
}

// Instruction returns the system-prompt text that asks a model without
// native structured output for JSON in the requested format; "" for a nil
// format or FormatText. The schema is embedded compacted.
func Instruction(format *llm.ResponseFormat) string {
	if format == nil {
		return ""
	}
	switch format.Type {
	case llm.FormatJSONObject:
		return "Respond only with a valid JSON object: no explanations, no markdown code fences."
	case llm.FormatJSONSchema:
		schema := format.Schema
		var buf bytes.Buffer
		if json.Compact(&buf, schema) == nil {
			schema = buf.Bytes()
		}
		var sb strings.Builder
		sb.WriteString("Respond only with a JSON object that conforms to this JSON Schema")
		if format.Name != "" {
			fmt.Fprintf(&sb, " (named %q)", format.Name)
		}
		sb.WriteString(": no explanations, no markdown code fences.\n\nJSON Schema:\n")
		sb.Write(schema)
		return sb.String()
	}
	return ""
}

// WithInstruction returns a copy of req whose system message carries
// Instruction(req.ResponseFormat): appended to the first message when that
// is a system message, else as a new system message in front. req is not
// modified; a request without a JSON format is returned as a plain copy.
func WithInstruction(req *llm.Request) *llm.Request {
	out := *req
	instr := Instruction(req.ResponseFormat)
	if instr == "" {
		return &out
	}
	if len(req.Messages) > 0 && req.Messages[0].Role == llm.RoleSystem {
		out.Messages = slices.Clone(req.Messages)
		sys := &out.Messages[0]
		if len(sys.Parts) > 0 {
			sys.Parts = append(slices.Clone(sys.Parts), llm.Part{Type: llm.PartText, Text: instr})
		} else if sys.Content == "" {
			sys.Content = instr
		} else {
			sys.Content += "\n\n" + instr
		}
		return &out
	}
	out.Messages = make([]llm.Message, 0, len(req.Messages)+1)
	out.Messages = append(out.Messages, llm.Message{Role: llm.RoleSystem, Content: instr})
	out.Messages = append(out.Messages, req.Messages...)
	return &out
}
