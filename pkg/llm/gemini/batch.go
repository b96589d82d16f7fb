package gemini

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"time"

	"google.golang.org/genai"

	"github.com/switchyard/switchyard/pkg/llm"
)

// Gemini's batch mode (https://ai.google.dev/gemini-api/docs/batch-mode and
// the API reference https://ai.google.dev/api/batch-mode): the requests go
// inline in one models.batchGenerateContent call ({batch: {displayName,
// inputConfig: {requests: {requests: [{request, metadata}]}}}}, which
// returns a long-running operation batches/<id>); its metadata.state goes
// BATCH_STATE_PENDING -> RUNNING -> SUCCEEDED (or FAILED, CANCELLED,
// EXPIRED); the answers come back in metadata.output.inlinedResponses, one
// {response | error, metadata} per request. Inline requests suit batches
// under 20 MB; a batch not done within 24 hours expires. Vertex AI batch
// prediction jobs (GCS or BigQuery input) are another API, not used here.

// Batch limits of inline batch mode (the guide: "under 20MB").
const (
	batchMaxLines = 100_000
	batchMaxBytes = 20 << 20
	// keyMetadata is the metadata key of an inline request that holds its
	// custom id; the API echoes a request's metadata on its response.
	keyMetadata = "key"
)

var _ llm.Batcher = (*Client)(nil)

// SupportsBatch implements llm.Batcher: the Gemini API backend only.
func (c *Client) SupportsBatch() bool { return c.batches != nil }

// BatchLimits implements llm.Batcher.
func (c *Client) BatchLimits() (lines, bytes int) { return batchMaxLines, batchMaxBytes }

// SubmitBatch implements llm.Batcher: ref is the batch's display name. Every
// request of one batch must be for the same model (one deployment's).
func (c *Client) SubmitBatch(ctx context.Context, ref string, reqs []llm.BatchRequest) (*llm.BatchInfo, error) {
	if !c.SupportsBatch() {
		return nil, llm.ErrBatchUnsupported
	}
	if len(reqs) == 0 {
		return nil, badRequest("an empty batch")
	}
	model := reqs[0].Request.Model
	src := &genai.BatchJobSource{InlinedRequests: make([]*genai.InlinedRequest, 0, len(reqs))}
	for _, r := range reqs {
		if r.Request.Model != model {
			return nil, badRequest("batch %s: requests for models %q and %q", ref, model, r.Request.Model)
		}
		contents, cfg, err := buildRequest(r.Request)
		if err != nil {
			return nil, err
		}
		src.InlinedRequests = append(src.InlinedRequests, &genai.InlinedRequest{
			Contents: contents, Config: cfg, Metadata: map[string]string{keyMetadata: r.CustomID},
		})
	}
	job, err := c.batches.Create(ctx, model, src, &genai.CreateBatchJobConfig{DisplayName: ref})
	if err != nil {
		return nil, classify(ctx, err, false, c.secrets)
	}
	return batchInfo(job), nil
}

// FindBatch implements llm.Batcher by display name, newest first, down to
// since.
func (c *Client) FindBatch(ctx context.Context, ref string, since time.Time, _ int) (*llm.BatchInfo, error) {
	for job, err := range c.batches.All(ctx) {
		if err != nil {
			return nil, classify(ctx, err, false, c.secrets)
		}
		if job.DisplayName == ref {
			return batchInfo(job), nil
		}
		if !job.CreateTime.IsZero() && job.CreateTime.Before(since.Add(-time.Minute)) {
			break
		}
	}
	return nil, nil
}

// PollBatch implements llm.Batcher.
func (c *Client) PollBatch(ctx context.Context, id string) (*llm.BatchInfo, error) {
	job, err := c.batches.Get(ctx, id, nil)
	if err != nil {
		return nil, classify(ctx, err, false, c.secrets)
	}
	return batchInfo(job), nil
}

// CancelBatch implements llm.Batcher.
func (c *Client) CancelBatch(ctx context.Context, id string) error {
	if err := c.batches.Cancel(ctx, id, nil); err != nil {
		return classify(ctx, err, false, c.secrets)
	}
	return nil
}

func batchInfo(job *genai.BatchJob) *llm.BatchInfo {
	info := &llm.BatchInfo{ID: job.Name, Status: string(job.State), Created: job.CreateTime}
	switch job.State {
	case genai.JobStateSucceeded, genai.JobStatePartiallySucceeded, genai.JobStateCancelled, genai.JobStateExpired:
		info.State = llm.BatchEnded
	case genai.JobStateFailed:
		info.State = llm.BatchFailed
		// The SDK does not carry the operation's error over from the
		// Gemini API (only Vertex's): the state is all there is.
		info.Message = "the batch failed (" + string(job.State) + ")"
		if job.Error != nil && job.Error.Message != "" {
			info.Message = job.Error.Message
		}
	default: // pending, queued, running, cancelling, paused, updating
		info.State = llm.BatchRunning
	}
	if job.Dest != nil {
		info.Done = len(job.Dest.InlinedResponses)
	}
	return info
}

// BatchAnswers implements llm.Batcher: the batch's inline responses, each
// named by its request's metadata. A cancelled or expired batch answers
// only the requests it ran; the others have no answer.
func (c *Client) BatchAnswers(ctx context.Context, id string) iter.Seq2[llm.BatchAnswer, error] {
	return func(yield func(llm.BatchAnswer, error) bool) {
		job, err := c.batches.Get(ctx, id, nil)
		if err != nil {
			yield(llm.BatchAnswer{}, classify(ctx, err, false, c.secrets))
			return
		}
		if job.Dest == nil {
			return
		}
		for _, r := range job.Dest.InlinedResponses {
			if r == nil {
				continue
			}
			if !yield(c.answer(r), nil) {
				return
			}
		}
	}
}

func (c *Client) answer(r *genai.InlinedResponse) llm.BatchAnswer {
	a := llm.BatchAnswer{CustomID: r.Metadata[keyMetadata]}
	if r.Error != nil {
		a.Err = jobError(r.Error, c.secrets)
		return a
	}
	if r.Response == nil {
		a.Err = &llm.Error{Kind: llm.KindUnavailable, Provider: ProviderName, Message: "batch response without an answer"}
		return a
	}
	if pf := r.Response.PromptFeedback; pf != nil && pf.BlockReason != "" {
		a.Err = &llm.Error{Kind: llm.KindContentPolicy, Provider: ProviderName, Code: string(pf.BlockReason),
			Message: llm.Scrub(cmp.Or(pf.BlockReasonMessage, "prompt blocked: "+string(pf.BlockReason)), c.secrets)}
		return a
	}
	// The stream's folding of one response, for one whole response.
	s := &stream{secrets: c.secrets}
	ch := s.response(r.Response)
	a.Text, a.FinishReason = ch.Delta, s.finishReason()
	for _, tc := range ch.ToolCalls {
		a.ToolCalls = append(a.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
	}
	if s.usage != nil {
		a.Usage = *s.usage
	}
	return a
}

// jobError classifies a line's error by its google.rpc code.
func jobError(e *genai.JobError, secrets []string) *llm.Error {
	out := &llm.Error{Provider: ProviderName, Message: llm.Scrub(e.Message, secrets)}
	var code int32
	if e.Code != nil {
		code = *e.Code
		out.Code = fmt.Sprint(code)
	}
	switch code {
	case 8: // RESOURCE_EXHAUSTED
		out.Kind = llm.KindRateLimited
	case 7, 16: // PERMISSION_DENIED, UNAUTHENTICATED
		out.Kind = llm.KindAuth
	case 3, 5, 9, 11: // INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, OUT_OF_RANGE
		out.Kind = llm.KindBadRequest
	case 4: // DEADLINE_EXCEEDED
		out.Kind = llm.KindTimeout
	default: // UNAVAILABLE, INTERNAL, UNKNOWN, ABORTED, ...
		out.Kind = llm.KindUnavailable
	}
	return out
}
