package anthropic

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
	"time"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/packages/param"

	"github.com/switchyard/switchyard/pkg/llm"
)

// Anthropic's Message Batches API
// (https://docs.anthropic.com/en/docs/build-with-claude/batch-processing and
// the API reference's /v1/messages/batches): one POST holds every request
// ({custom_id, params}: the Messages API's parameters); the batch's
// processing_status goes in_progress -> ended (canceling -> ended when
// cancelled); once ended, its results_url serves a JSONL line per request,
// {custom_id, result: {type: succeeded (message) | errored (error) |
// canceled | expired}}, in no particular order. Up to 100,000 requests or
// 256 MB per batch; a batch that has not ended within 24 hours expires.

// Batch limits of the Message Batches API.
const (
	batchMaxLines = 100_000
	batchMaxBytes = 256 << 20
)

var _ llm.Batcher = (*Client)(nil)

// SupportsBatch implements llm.Batcher: Anthropic's own API only (Bedrock
// and Vertex have batch jobs of their own, not this API).
func (c *Client) SupportsBatch() bool { return c.opts.Bedrock == nil && c.opts.Vertex == nil }

// BatchLimits implements llm.Batcher.
func (c *Client) BatchLimits() (lines, bytes int) { return batchMaxLines, batchMaxBytes }

// SubmitBatch implements llm.Batcher. The API has no metadata for a batch:
// ref is not sent, and FindBatch finds a batch by its size and creation
// time instead.
func (c *Client) SubmitBatch(ctx context.Context, ref string, reqs []llm.BatchRequest) (*llm.BatchInfo, error) {
	if !c.SupportsBatch() {
		return nil, llm.ErrBatchUnsupported
	}
	p := sdk.MessageBatchNewParams{Requests: make([]sdk.MessageBatchNewParamsRequest, 0, len(reqs))}
	for _, r := range reqs {
		mp, err := c.buildParams(r.Request)
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(mp)
		if err != nil {
			return nil, badRequest("batch line %s: %v", r.CustomID, err)
		}
		// The batch's params are the Messages API's, in a type of their
		// own: the JSON the provider builds for a call, as is.
		p.Requests = append(p.Requests, sdk.MessageBatchNewParamsRequest{
			CustomID: r.CustomID,
			Params:   param.Override[sdk.MessageBatchNewParamsRequestParams](json.RawMessage(raw)),
		})
	}
	b, err := c.sdk.Messages.Batches.New(ctx, p)
	if err != nil {
		return nil, classify(ctx, err, false, c.secrets, c.now())
	}
	return batchInfo(b), nil
}

// FindBatch implements llm.Batcher: the first batch of n requests created
// at or after since (less a minute of clock skew), newest first. The API
// keeps no name for a batch, so two batches of the same size created by the
// same account in that minute cannot be told apart; the caller keeps the
// window to one submission (see internal/vbatch).
func (c *Client) FindBatch(ctx context.Context, _ string, since time.Time, n int) (*llm.BatchInfo, error) {
	it := c.sdk.Messages.Batches.ListAutoPaging(ctx, sdk.MessageBatchListParams{Limit: sdk.Int(100)})
	var found *llm.BatchInfo
	for it.Next() {
		b := it.Current()
		if b.CreatedAt.Before(since.Add(-time.Minute)) {
			break
		}
		if info := batchInfo(&b); info.Total == n {
			found = info // keep going: the oldest match is the one submitted first
		}
	}
	if err := it.Err(); err != nil {
		return nil, classify(ctx, err, false, c.secrets, c.now())
	}
	return found, nil
}

// PollBatch implements llm.Batcher.
func (c *Client) PollBatch(ctx context.Context, id string) (*llm.BatchInfo, error) {
	b, err := c.sdk.Messages.Batches.Get(ctx, id, sdk.MessageBatchGetParams{})
	if err != nil {
		return nil, classify(ctx, err, false, c.secrets, c.now())
	}
	return batchInfo(b), nil
}

// CancelBatch implements llm.Batcher.
func (c *Client) CancelBatch(ctx context.Context, id string) error {
	if _, err := c.sdk.Messages.Batches.Cancel(ctx, id, sdk.MessageBatchCancelParams{}); err != nil {
		return classify(ctx, err, false, c.secrets, c.now())
	}
	return nil
}

func batchInfo(b *sdk.MessageBatch) *llm.BatchInfo {
	rc := b.RequestCounts
	info := &llm.BatchInfo{
		ID: b.ID, Status: string(b.ProcessingStatus), Created: b.CreatedAt,
		Total: int(rc.Processing + rc.Succeeded + rc.Errored + rc.Canceled + rc.Expired),
		Done:  int(rc.Succeeded + rc.Errored + rc.Canceled + rc.Expired),
	}
	info.State = llm.BatchRunning
	if b.ProcessingStatus == sdk.MessageBatchProcessingStatusEnded {
		info.State = llm.BatchEnded
	}
	return info
}

// BatchAnswers implements llm.Batcher with the results' JSONL stream.
func (c *Client) BatchAnswers(ctx context.Context, id string) iter.Seq2[llm.BatchAnswer, error] {
	return func(yield func(llm.BatchAnswer, error) bool) {
		s := c.sdk.Messages.Batches.ResultsStreaming(ctx, id, sdk.MessageBatchResultsParams{})
		defer func() { _ = s.Close() }()
		for s.Next() {
			if !yield(c.answer(s.Current()), nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			yield(llm.BatchAnswer{}, classify(ctx, err, false, c.secrets, c.now()))
		}
	}
}

func (c *Client) answer(r sdk.MessageBatchIndividualResponse) llm.BatchAnswer {
	a := llm.BatchAnswer{CustomID: r.CustomID}
	switch res := r.Result; res.Type {
	case "succeeded":
		m := res.Message
		var text strings.Builder
		for _, b := range m.Content {
			switch b.Type {
			case "text":
				text.WriteString(b.Text)
			case "tool_use":
				a.ToolCalls = append(a.ToolCalls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: string(b.Input)})
			}
		}
		a.Text, a.FinishReason = text.String(), finishReason(m.StopReason)
		u := m.Usage
		a.Usage.PromptTokens = int(u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens)
		a.Usage.CompletionTokens = int(u.OutputTokens)
		a.Usage.TotalTokens = a.Usage.PromptTokens + a.Usage.CompletionTokens
	case "errored":
		eo := res.Error.Error
		msg := llm.Scrub(eo.Message, c.secrets)
		a.Err = &llm.Error{Kind: kindOf(eo.Type, 0, msg), Provider: ProviderName, Code: eo.Type, Message: cmp.Or(msg, eo.Type)}
	case "canceled":
		a.Err = &llm.Error{Kind: llm.KindUnavailable, Provider: ProviderName, Code: llm.CodeBatchCancelled, Message: "the batch was cancelled before this request ran"}
	case "expired":
		a.Err = &llm.Error{Kind: llm.KindUnavailable, Provider: ProviderName, Code: llm.CodeBatchExpired, Message: "the batch expired before this request ran"}
	default:
		a.Err = &llm.Error{Kind: llm.KindUnavailable, Provider: ProviderName, Message: fmt.Sprintf("unknown batch result type %q", res.Type)}
	}
	return a
}
