package openai

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/switchyard/switchyard/pkg/llm"
)

// OpenAI's Batch API (https://platform.openai.com/docs/guides/batch and the
// API reference's Files and Batches): the requests are uploaded as a JSONL
// file (purpose "batch"), one {custom_id, method, url, body} per line; a
// batch is created on that file for /v1/chat/completions with a 24h window;
// it goes validating -> in_progress -> finalizing -> completed (or failed,
// expired, cancelling -> cancelled); its output file has a line per
// answered request ({custom_id, response: {status_code, body}}), its error
// file a line per failed one ({custom_id, response or error}), and the
// requests an expired or cancelled batch did not run are in the error file
// with code batch_expired / batch_cancelled. Any OpenAI-compatible server
// with the same API works; Azure OpenAI's deployment URLs do not.

// Batch limits of the Batch API (its guide: 50,000 requests, 200 MB per
// input file).
const (
	batchMaxLines = 50_000
	batchMaxBytes = 200 << 20
	// refMetadata is the batch's metadata key that holds the caller's ref.
	refMetadata = "switchyard_batch"
)

var _ llm.Batcher = (*Client)(nil)

// SupportsBatch implements llm.Batcher: any endpoint but Azure's.
func (c *Client) SupportsBatch() bool { return !c.azure }

// BatchLimits implements llm.Batcher.
func (c *Client) BatchLimits() (lines, bytes int) { return batchMaxLines, batchMaxBytes }

// batchLine is one line of the input file.
type batchLine struct {
	CustomID string                      `json:"custom_id"`
	Method   string                      `json:"method"`
	URL      string                      `json:"url"`
	Body     oai.ChatCompletionNewParams `json:"body"`
}

// SubmitBatch implements llm.Batcher: it uploads the input file and creates
// the batch with ref in its metadata.
func (c *Client) SubmitBatch(ctx context.Context, ref string, reqs []llm.BatchRequest) (*llm.BatchInfo, error) {
	if !c.SupportsBatch() {
		return nil, llm.ErrBatchUnsupported
	}
	var file bytes.Buffer
	enc := json.NewEncoder(&file)
	for _, r := range reqs {
		p, err := c.params(r.Request)
		if err != nil {
			return nil, err
		}
		// A batch line is answered whole: no streaming options.
		p.StreamOptions = oai.ChatCompletionStreamOptionsParam{}
		if err := enc.Encode(batchLine{CustomID: r.CustomID, Method: http.MethodPost, URL: "/v1/chat/completions", Body: p}); err != nil {
			return nil, c.errorf(llm.KindBadRequest, "encode batch line %s: %v", r.CustomID, err)
		}
	}
	f, err := c.files.New(ctx, oai.FileNewParams{
		File:    oai.File(bytes.NewReader(file.Bytes()), ref+".jsonl", "application/jsonl"),
		Purpose: oai.FilePurposeBatch,
	})
	if err != nil {
		return nil, c.classify(ctx, err)
	}
	b, err := c.batches.New(ctx, oai.BatchNewParams{
		CompletionWindow: oai.BatchNewParamsCompletionWindow24h,
		Endpoint:         oai.BatchNewParamsEndpointV1ChatCompletions,
		InputFileID:      f.ID,
		Metadata:         shared.Metadata{refMetadata: ref},
	})
	if err != nil {
		return nil, c.classify(ctx, err)
	}
	return batchInfo(b), nil
}

// FindBatch implements llm.Batcher by the ref in the batches' metadata,
// newest first, down to since.
func (c *Client) FindBatch(ctx context.Context, ref string, since time.Time, _ int) (*llm.BatchInfo, error) {
	it := c.batches.ListAutoPaging(ctx, oai.BatchListParams{Limit: oai.Int(100)})
	for it.Next() {
		b := it.Current()
		if b.Metadata[refMetadata] == ref {
			return batchInfo(&b), nil
		}
		if time.Unix(b.CreatedAt, 0).Before(since.Add(-time.Minute)) {
			break // older than the submission: it is not there
		}
	}
	if err := it.Err(); err != nil {
		return nil, c.classify(ctx, err)
	}
	return nil, nil
}

// PollBatch implements llm.Batcher.
func (c *Client) PollBatch(ctx context.Context, id string) (*llm.BatchInfo, error) {
	b, err := c.batches.Get(ctx, id)
	if err != nil {
		return nil, c.classify(ctx, err)
	}
	return batchInfo(b), nil
}

// CancelBatch implements llm.Batcher.
func (c *Client) CancelBatch(ctx context.Context, id string) error {
	if _, err := c.batches.Cancel(ctx, id); err != nil {
		return c.classify(ctx, err)
	}
	return nil
}

func batchInfo(b *oai.Batch) *llm.BatchInfo {
	info := &llm.BatchInfo{
		ID: b.ID, Status: string(b.Status), Created: time.Unix(b.CreatedAt, 0),
		Total: int(b.RequestCounts.Total), Done: int(b.RequestCounts.Completed + b.RequestCounts.Failed),
	}
	switch b.Status {
	case oai.BatchStatusCompleted, oai.BatchStatusExpired, oai.BatchStatusCancelled:
		info.State = llm.BatchEnded
	case oai.BatchStatusFailed:
		info.State = llm.BatchFailed
		for _, e := range b.Errors.Data {
			info.Message = cmp.Or(info.Message, fmt.Sprintf("%s: %s (line %d)", e.Code, e.Message, e.Line))
		}
	default: // validating, in_progress, finalizing, cancelling
		info.State = llm.BatchRunning
	}
	return info
}

// BatchAnswers implements llm.Batcher: the lines of the batch's output
// file, then those of its error file.
func (c *Client) BatchAnswers(ctx context.Context, id string) iter.Seq2[llm.BatchAnswer, error] {
	return func(yield func(llm.BatchAnswer, error) bool) {
		b, err := c.batches.Get(ctx, id)
		if err != nil {
			yield(llm.BatchAnswer{}, c.classify(ctx, err))
			return
		}
		for _, fileID := range []string{b.OutputFileID, b.ErrorFileID} {
			if fileID == "" {
				continue
			}
			if !c.fileAnswers(ctx, fileID, yield) {
				return
			}
		}
	}
}

// outputLine is one line of an output or error file.
type outputLine struct {
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *vendorError `json:"error"`
}

// completion is the part of a chat.completion a batch answer needs.
type completion struct {
	Choices []struct {
		Index        int64  `json:"index"`
		FinishReason string `json:"finish_reason"`
		Message      struct {
			Content   string         `json:"content"`
			Refusal   string         `json:"refusal"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"message"`
	} `json:"choices"`
	Usage wireUsage `json:"usage"`
}

// fileAnswers yields the answers of one output or error file; false when
// yield asked to stop or the file could not be read (the error yielded).
func (c *Client) fileAnswers(ctx context.Context, fileID string, yield func(llm.BatchAnswer, error) bool) bool {
	res, err := c.files.Content(ctx, fileID)
	if err != nil {
		yield(llm.BatchAnswer{}, c.classify(ctx, err))
		return false
	}
	defer func() { _ = res.Body.Close() }()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20) // a line is one whole answer
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l outputLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			yield(llm.BatchAnswer{}, c.errorf(llm.KindUnavailable, "batch file %s: bad line: %v", fileID, err))
			return false
		}
		if !yield(c.answer(&l), nil) {
			return false
		}
	}
	if err := sc.Err(); err != nil && err != io.EOF {
		yield(llm.BatchAnswer{}, c.classify(ctx, err))
		return false
	}
	return true
}

// answer turns one line into an answer.
func (c *Client) answer(l *outputLine) llm.BatchAnswer {
	a := llm.BatchAnswer{CustomID: l.CustomID}
	switch {
	case l.Response != nil && l.Response.StatusCode == http.StatusOK:
		var cc completion
		if err := json.Unmarshal(l.Response.Body, &cc); err != nil || len(cc.Choices) == 0 {
			a.Err = c.errorf(llm.KindUnavailable, "batch answer without a choice")
			return a
		}
		ch := cc.Choices[0]
		if ch.Message.Refusal != "" {
			a.Err = &llm.Error{Kind: llm.KindContentPolicy, Provider: c.name, Code: "refusal", Message: c.redact(ch.Message.Refusal)}
			return a
		}
		a.Text, a.FinishReason = ch.Message.Content, finishReason(ch.FinishReason)
		for _, tc := range ch.Message.ToolCalls {
			a.ToolCalls = append(a.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		u := cc.Usage
		a.Usage = llm.Usage{PromptTokens: int(u.PromptTokens), CompletionTokens: int(u.CompletionTokens), TotalTokens: int(cmp.Or(u.TotalTokens, u.PromptTokens+u.CompletionTokens))}
	case l.Response != nil:
		msg, code, typ := parseErrorBody(l.Response.Body)
		e := &llm.Error{Provider: c.name, Status: l.Response.StatusCode, Code: cmp.Or(code, typ), Message: c.redact(cmp.Or(msg, http.StatusText(l.Response.StatusCode)))}
		e.Kind = kindFromCode(code, typ)
		if e.Kind == llm.KindUnknown {
			e.Kind = kindFromStatus(l.Response.StatusCode)
		}
		a.Err = e
	case l.Error != nil:
		code := l.Error.code()
		e := &llm.Error{Provider: c.name, Code: code, Message: c.redact(cmp.Or(l.Error.Message, code))}
		switch code {
		case llm.CodeBatchExpired, llm.CodeBatchCancelled:
			e.Kind = llm.KindUnavailable // not run: another try may
		default:
			e.Kind = cmp.Or(kindFromCode(code, l.Error.Type), llm.KindUnavailable)
		}
		a.Err = e
	default:
		a.Err = c.errorf(llm.KindUnavailable, "batch line %s has neither a response nor an error", l.CustomID)
	}
	return a
}
