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
	// Resolve, when set, maps a line's model to its group (e.g. through the
	// model file's aliases); false makes the line invalid. Unset: the model
	// must be a group name.
	Resolve func(model string) (group string, ok bool)
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
		switch {
		case r.Resolve != nil:
			var ok bool
			if it.Group, ok = r.Resolve(model); !ok {
				err = fmt.Errorf("model %q does not exist", model)
			}
		case ValidGroup(model):
			it.Group = model
		default:
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

func parseAnthropicLine(line []byte) (customID, model string, req *Request, err error) {
	var in struct {
		CustomID string           `json:"custom_id"`
		Params   AnthropicRequest `json:"params"`
	}
	if err := json.Unmarshal(line, &in); err != nil {
		return in.CustomID, "", nil, fmt.Errorf("not a JSON object {custom_id, params}: %w", err)
	}
	if f := in.Params.Unsupported(); f != "" {
		return in.CustomID, "", nil, fmt.Errorf("params.%s is not supported", f)
	}
	req, err = in.Params.Job()
	if err != nil {
		return in.CustomID, "", nil, fmt.Errorf("params.%w", err)
	}
	return in.CustomID, in.Params.Model, req, nil
}

// BatchJobID derives the job id of a batch line from the batch id, the
// line's group and its custom_id, so that a re-run of the same batch
// publishes the same ids, and the same line sent to another group (another
// --group, or a model the model file now maps elsewhere) is another job,
// never read back from the first. custom_ids are hashed: they may hold any
// character.
func BatchJobID(batchID, group, customID string) string {
	h := sha256.New()
	h.Write([]byte(group))
	h.Write([]byte{0})
	h.Write([]byte(customID))
	return batchID + "-" + b32.EncodeToString(h.Sum(nil)[:15])
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
// of at most 80 characters (a line's job id adds 25, and a re-run's -rN).
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
	// Rerun is set when the line was run again because its last run failed.
	Rerun bool
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
}

func openAILine(o *BatchOutcome) openAIOut {
	out := openAIOut{ID: "batch_req_" + o.JobID, CustomID: o.Item.CustomID}
	r := o.Result
	switch {
	case r == nil:
		e := o.failure()
		out.Error = &openAIError{Code: string(e.Code), Message: e.Message}
	case r.Status == StatusOK:
		out.Response = &openAIResp{StatusCode: 200, RequestID: r.ID, Body: OpenAIChatCompletion(r, "", time.Now().Unix())}
	default:
		status, body := OpenAIErrorOf(o.failure())
		out.Response = &openAIResp{StatusCode: status, RequestID: r.ID, Body: body}
	}
	return out
}

type anthropicOut struct {
	CustomID string          `json:"custom_id"`
	Result   anthropicResult `json:"result"`
}

type anthropicResult struct {
	Type    string              `json:"type"` // succeeded | errored | canceled | expired
	Message *AnthropicMessage   `json:"message,omitempty"`
	Error   *AnthropicErrorBody `json:"error,omitempty"`
}

func anthropicLine(o *BatchOutcome) anthropicOut {
	out := anthropicOut{CustomID: o.Item.CustomID}
	r := o.Result
	if r != nil && r.Status == StatusOK {
		out.Result = anthropicResult{Type: "succeeded", Message: AnthropicMessageOf(r, "")}
		return out
	}
	e := o.failure()
	switch e.Code {
	case CodeCancelled:
		out.Result = anthropicResult{Type: "canceled"}
	case CodeDeadlineExceeded:
		out.Result = anthropicResult{Type: "expired"}
	default:
		_, body := AnthropicErrorOf(e)
		out.Result = anthropicResult{Type: "errored", Error: body}
	}
	return out
}
