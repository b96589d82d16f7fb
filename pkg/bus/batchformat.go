package bus

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
)

// BatchFormat is the file format of a batch: its input lines and the result
// lines written for them.
type BatchFormat string

// Batch formats.
const (
	// BatchOpenAI is the OpenAI Batch API format: input lines
	// {custom_id, method, url, body} with url /v1/chat/completions, output
	// lines {id, custom_id, response: {status_code, request_id, body}, error}.
	BatchOpenAI BatchFormat = "openai"
	// BatchAnthropic is the Anthropic Message Batches format: input lines
	// {custom_id, params}, output lines {custom_id, result: {type, ...}}.
	BatchAnthropic BatchFormat = "anthropic"
)

// DetectBatchFormat tells the format of a batch from one input line: a
// "params" object means Anthropic, anything else OpenAI.
func DetectBatchFormat(line []byte) BatchFormat {
	var probe struct {
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal(line, &probe) == nil && len(probe.Params) > 0 && probe.Params[0] == '{' {
		return BatchAnthropic
	}
	return BatchOpenAI
}

// BatchItem is one line of a batch input.
type BatchItem struct {
	// Line is the 1-based line number in the input.
	Line int
	// CustomID is the line's custom_id, echoed in its result line.
	CustomID string
	// Group is the model group the request goes to.
	Group string
	// Request is the parsed request; nil when Err is set.
	Request *Request
	// Err says why the line is invalid: an *Error with code
	// invalid_request whose message starts with "line N:". An invalid line
	// is written to the output as an error and never stops the batch.
	Err error
}

// BatchReader reads batch input lines. A line that is not valid becomes an
// item with Err set.
type BatchReader struct {
	// Format of the input; empty: detected from the first non-empty line.
	Format BatchFormat
	// Group, when set, is the group of every line; else a line's model
	// names its group.
	Group string
}

// maxBatchLine bounds one input line (OpenAI's own limit on a batch file is
// 200 MB; a single request is far smaller).
const maxBatchLine = 64 << 20

// Items returns the input's items in order. The format, when not set, is
// detected from the first non-empty line and stored in r.Format. A read
// error ends the sequence with an item whose Line is 0 and Err is set.
func (r *BatchReader) Items(in io.Reader) iter.Seq[BatchItem] {
	return func(yield func(BatchItem) bool) {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), maxBatchLine)
		n := 0
		for sc.Scan() {
			n++
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			if r.Format == "" {
				r.Format = DetectBatchFormat(line)
			}
			if !yield(r.Parse(n, line)) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(BatchItem{Err: fmt.Errorf("read batch input after line %d: %w", n, err)})
		}
	}
}

// Parse parses one input line (number n) in r.Format (OpenAI when empty).
func (r *BatchReader) Parse(n int, line []byte) BatchItem {
	it := BatchItem{Line: n}
	var model string
	var err error
	if r.Format == BatchAnthropic {
		it.CustomID, model, it.Request, err = parseAnthropicLine(line)
	} else {
		it.CustomID, model, it.Request, err = parseOpenAILine(line)
	}
	if err == nil && it.CustomID == "" {
		err = errors.New("custom_id is missing")
	}
	it.Group = r.Group
	if err == nil && it.Group == "" {
		it.Group = model
		if !ValidGroup(model) {
			err = fmt.Errorf("model %q is not a group name (one token of [a-z0-9_-]); name the group with -g", model)
		}
	}
	if err != nil {
		it.Request = nil
		it.Err = &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("line %d: %v", n, err)}
	}
	return it
}

func parseOpenAILine(line []byte) (customID, model string, req *Request, err error) {
	var in struct {
		CustomID string          `json:"custom_id"`
		Method   string          `json:"method"`
		URL      string          `json:"url"`
		Body     json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(line, &in); err != nil {
		return in.CustomID, "", nil, fmt.Errorf("not a JSON object {custom_id, method, url, body}: %w", err)
	}
	if in.Method != "" && !strings.EqualFold(in.Method, "POST") {
		return in.CustomID, "", nil, fmt.Errorf("method %q: only POST is supported", in.Method)
	}
	if in.URL != "" && in.URL != "/v1/chat/completions" && in.URL != "/chat/completions" {
		return in.CustomID, "", nil, fmt.Errorf("url %q: only /v1/chat/completions is supported", in.URL)
	}
	if len(in.Body) == 0 || in.Body[0] != '{' {
		return in.CustomID, "", nil, errors.New("body: want a chat completions request object")
	}
	req = &Request{}
	if err := json.Unmarshal(in.Body, req); err != nil {
		return in.CustomID, "", nil, fmt.Errorf("body: %w", err)
	}
	if len(req.Messages) == 0 {
		return in.CustomID, "", nil, errors.New("body: messages is empty")
	}
	return in.CustomID, req.Model, req, nil
}

// anthropicParams is the subset of a Messages API request a job can carry.
type anthropicParams struct {
	Model         string             `json:"model"`
	MaxTokens     *int               `json:"max_tokens"`
	System        json.RawMessage    `json:"system"`
	Messages      []anthropicMessage `json:"messages"`
	Temperature   *float64           `json:"temperature"`
	TopP          *float64           `json:"top_p"`
	StopSequences []string           `json:"stop_sequences"`
	Metadata      map[string]any     `json:"metadata"`
}

type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthropicBlock struct {
	Type   string `json:"type"`
	Text   string `json:"text"`
	Source *struct {
		Type      string `json:"type"` // base64 | url
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	} `json:"source"`
}

func parseAnthropicLine(line []byte) (customID, model string, req *Request, err error) {
	var in struct {
		CustomID string          `json:"custom_id"`
		Params   anthropicParams `json:"params"`
	}
	if err := json.Unmarshal(line, &in); err != nil {
		return in.CustomID, "", nil, fmt.Errorf("not a JSON object {custom_id, params}: %w", err)
	}
	p := in.Params
	req = &Request{Model: p.Model, MaxTokens: p.MaxTokens, Temperature: p.Temperature, TopP: p.TopP, Stop: p.StopSequences}
	if len(p.System) > 0 && !bytes.Equal(p.System, jsonNull) {
		c, err := anthropicContent(p.System)
		if err != nil {
			return in.CustomID, "", nil, fmt.Errorf("params.system: %w", err)
		}
		req.Messages = append(req.Messages, Message{Role: "system", Content: c})
	}
	if len(p.Messages) == 0 {
		return in.CustomID, "", nil, errors.New("params.messages is empty")
	}
	for i, m := range p.Messages {
		c, err := anthropicContent(m.Content)
		if err != nil {
			return in.CustomID, "", nil, fmt.Errorf("params.messages[%d].content: %w", i, err)
		}
		req.Messages = append(req.Messages, Message{Role: m.Role, Content: c})
	}
	return in.CustomID, p.Model, req, nil
}

// anthropicContent converts a string or an array of text and image blocks.
func anthropicContent(raw json.RawMessage) (Content, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return Text(s), err
	}
	var blocks []anthropicBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return Content{}, errors.New("want a string or an array of content blocks")
	}
	parts := make([]Part, 0, len(blocks))
	for _, b := range blocks {
		switch {
		case b.Type == "text":
			parts = append(parts, Part{Type: "text", Text: b.Text})
		case b.Type == "image" && b.Source != nil && b.Source.Type == "base64":
			parts = append(parts, Part{Type: "image_url", ImageURL: &ImageURL{URL: "data:" + b.Source.MediaType + ";base64," + b.Source.Data}})
		case b.Type == "image" && b.Source != nil && b.Source.Type == "url":
			parts = append(parts, Part{Type: "image_url", ImageURL: &ImageURL{URL: b.Source.URL}})
		default:
			return Content{}, fmt.Errorf("content block type %q is not supported (text, image)", b.Type)
		}
	}
	if len(parts) == 1 && parts[0].Type == "text" {
		return Text(parts[0].Text), nil
	}
	return Content{Parts: parts}, nil
}

// BatchJobID derives the job id of a batch line from the batch id and the
// line's custom_id, so that a re-run of the same batch publishes the same
// ids. custom_ids are hashed: they may hold any character.
func BatchJobID(batchID, customID string) string {
	sum := sha256.Sum256([]byte(customID))
	return batchID + "-" + b32.EncodeToString(sum[:15])
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// BatchIDFor derives a batch id from a name and the input's content (for
// the CLI: the input file's absolute path and bytes). A name that is already
// a short valid job id prefix is used as is.
func BatchIDFor(name string, content []byte) string {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(content)
	return "batch-" + strings.ToLower(b32.EncodeToString(h.Sum(nil)[:10]))
}

// ValidBatchID reports whether id can prefix batch job ids: a valid job id
// of at most 80 characters.
func ValidBatchID(id string) bool { return len(id) <= 80 && ValidJobID(id) }

// BatchOutcome is the end of one batch line.
type BatchOutcome struct {
	Item  BatchItem
	JobID string
	// Result is the job's result; nil when the line was invalid or the job
	// could not be published.
	Result *Result
	// Err is the line's error (Item.Err, or a publish failure) when Result
	// is nil.
	Err error
	// Stored is set when the result was read back from the results stream
	// (the line had run before) rather than awaited.
	Stored bool
}

// OK reports whether the line succeeded.
func (o *BatchOutcome) OK() bool { return o.Result != nil && o.Result.Status == StatusOK }

// failure returns the outcome's error as a wire error.
func (o *BatchOutcome) failure() *Error {
	if o.Result != nil && o.Result.Error != nil {
		return o.Result.Error
	}
	var be *Error
	if errors.As(o.Err, &be) {
		return be
	}
	msg := "unknown error"
	if o.Err != nil {
		msg = o.Err.Error()
	}
	return &Error{Code: CodeInternal, Message: msg}
}

// MarshalBatchLine encodes an outcome as one output line (without the
// newline) in format f.
func MarshalBatchLine(f BatchFormat, o *BatchOutcome) ([]byte, error) {
	if f == BatchAnthropic {
		return json.Marshal(anthropicLine(o))
	}
	return json.Marshal(openAILine(o))
}

type openAIOut struct {
	ID       string       `json:"id"`
	CustomID string       `json:"custom_id"`
	Response *openAIResp  `json:"response"`
	Error    *openAIError `json:"error"`
}

type openAIResp struct {
	StatusCode int    `json:"status_code"`
	RequestID  string `json:"request_id"`
	Body       any    `json:"body"`
}

type openAIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Type    string `json:"type,omitempty"`
}

type openAICompletion struct {
	ID      string         `json:"id"`
	Object  string         `json:"object"`
	Created int64          `json:"created"`
	Model   string         `json:"model"`
	Choices []openAIChoice `json:"choices"`
	Usage   *Usage         `json:"usage,omitempty"`
}

type openAIChoice struct {
	Index        int           `json:"index"`
	Message      openAIMessage `json:"message"`
	FinishReason string        `json:"finish_reason"`
}

type openAIMessage struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// statusOf maps an error code to the HTTP status OpenAI would answer.
func statusOf(c ErrorCode) int {
	switch c {
	case CodeInvalidRequest, CodeContextWindowExceeded, CodeContentPolicy, CodeValidationFailed:
		return 400
	case CodeAuth:
		return 401
	case CodeUnknownGroup:
		return 404
	case CodeTooLarge:
		return 413
	case CodeRateLimited, CodeBudgetExceeded:
		return 429
	case CodeTimeout, CodeDeadlineExceeded:
		return 408
	case CodeCancelled:
		return 499
	case CodeProviderUnavailable:
		return 503
	}
	return 500
}

func openAILine(o *BatchOutcome) openAIOut {
	out := openAIOut{ID: "batch_req_" + o.JobID, CustomID: o.Item.CustomID}
	r := o.Result
	switch {
	case r == nil:
		e := o.failure()
		out.Error = &openAIError{Code: string(e.Code), Message: e.Message}
	case r.Status == StatusOK:
		text := r.Text
		if r.JSON != nil && text == "" {
			if b, err := json.Marshal(r.JSON); err == nil {
				text = string(b)
			}
		}
		content := &text
		if text == "" && len(r.ToolCalls) > 0 {
			content = nil
		}
		out.Response = &openAIResp{StatusCode: 200, RequestID: r.ID, Body: openAICompletion{
			ID: "chatcmpl-" + r.ID, Object: "chat.completion", Created: time.Now().Unix(), Model: r.Model,
			Choices: []openAIChoice{{Message: openAIMessage{Role: "assistant", Content: content, ToolCalls: r.ToolCalls}, FinishReason: r.FinishReason}},
			Usage:   r.Usage,
		}}
	default:
		e := o.failure()
		out.Response = &openAIResp{StatusCode: statusOf(e.Code), RequestID: r.ID, Body: map[string]any{
			"error": openAIError{Code: string(e.Code), Message: e.Message, Type: string(e.Code)},
		}}
	}
	return out
}

type anthropicOut struct {
	CustomID string          `json:"custom_id"`
	Result   anthropicResult `json:"result"`
}

type anthropicResult struct {
	Type    string            `json:"type"` // succeeded | errored | canceled | expired
	Message *anthropicMsgOut  `json:"message,omitempty"`
	Error   *anthropicErrWrap `json:"error,omitempty"`
}

type anthropicMsgOut struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Role         string           `json:"role"`
	Model        string           `json:"model"`
	Content      []map[string]any `json:"content"`
	StopReason   string           `json:"stop_reason"`
	StopSequence *string          `json:"stop_sequence"`
	Usage        anthropicUsage   `json:"usage"`
}

type anthropicUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

type anthropicErrWrap struct {
	Type  string         `json:"type"` // "error"
	Error anthropicError `json:"error"`
}

type anthropicError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// anthropicErrType maps an error code to Anthropic's error types.
func anthropicErrType(c ErrorCode) string {
	switch c {
	case CodeInvalidRequest, CodeContextWindowExceeded, CodeContentPolicy, CodeValidationFailed, CodeUnknownGroup:
		return "invalid_request_error"
	case CodeAuth:
		return "authentication_error"
	case CodeTooLarge:
		return "request_too_large"
	case CodeRateLimited, CodeBudgetExceeded:
		return "rate_limit_error"
	case CodeProviderUnavailable:
		return "overloaded_error"
	case CodeTimeout:
		return "timeout_error"
	}
	return "api_error"
}

func stopReason(finish string) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls":
		return "tool_use"
	case "stop", "":
		return "end_turn"
	}
	return finish
}

func anthropicLine(o *BatchOutcome) anthropicOut {
	out := anthropicOut{CustomID: o.Item.CustomID}
	r := o.Result
	if r != nil && r.Status == StatusOK {
		text := r.Text
		if r.JSON != nil && text == "" {
			if b, err := json.Marshal(r.JSON); err == nil {
				text = string(b)
			}
		}
		content := []map[string]any{}
		if text != "" {
			content = append(content, map[string]any{"type": "text", "text": text})
		}
		for _, tc := range r.ToolCalls {
			var input any = map[string]any{}
			_ = json.Unmarshal([]byte(tc.Function.Arguments), &input)
			content = append(content, map[string]any{"type": "tool_use", "id": tc.ID, "name": tc.Function.Name, "input": input})
		}
		m := &anthropicMsgOut{ID: "msg_" + r.ID, Type: "message", Role: "assistant", Model: r.Model, Content: content, StopReason: stopReason(r.FinishReason)}
		if r.Usage != nil {
			m.Usage = anthropicUsage{InputTokens: r.Usage.PromptTokens, OutputTokens: r.Usage.CompletionTokens}
		}
		out.Result = anthropicResult{Type: "succeeded", Message: m}
		return out
	}
	e := o.failure()
	switch e.Code {
	case CodeCancelled:
		out.Result = anthropicResult{Type: "canceled"}
	case CodeDeadlineExceeded:
		out.Result = anthropicResult{Type: "expired"}
	default:
		out.Result = anthropicResult{Type: "errored", Error: &anthropicErrWrap{Type: "error", Error: anthropicError{Type: anthropicErrType(e.Code), Message: e.Message}}}
	}
	return out
}
