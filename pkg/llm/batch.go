package llm

import (
	"context"
	"errors"
	"iter"
	"time"
)

// Batcher is implemented by providers that can send requests through their
// vendor's batch API (OpenAI's Batch API, Anthropic's Message Batches,
// Gemini's batch mode): many requests in one asynchronous job, answered
// within the vendor's window (a day) at a lower price. Implementations use
// the vendors' SDKs and, like Stream, never retry.
type Batcher interface {
	// SupportsBatch reports whether this provider's endpoint has a batch
	// API (Azure OpenAI, Bedrock and Vertex do not here).
	SupportsBatch() bool
	// BatchLimits are the most lines and request bytes one batch may hold.
	BatchLimits() (lines, bytes int)
	// SubmitBatch creates one vendor batch of reqs. ref names it, so that
	// FindBatch finds it again if the caller could not record the answer
	// (a crash between the vendor's reply and the caller's next write).
	SubmitBatch(ctx context.Context, ref string, reqs []BatchRequest) (*BatchInfo, error)
	// FindBatch returns the batch SubmitBatch created under ref (of n
	// lines, created at or after since), or nil, nil when there is none.
	FindBatch(ctx context.Context, ref string, since time.Time, n int) (*BatchInfo, error)
	// PollBatch returns what the vendor says of batch id now.
	PollBatch(ctx context.Context, id string) (*BatchInfo, error)
	// BatchAnswers returns the answers of an ended batch, one per line the
	// vendor reports, in no particular order.
	BatchAnswers(ctx context.Context, id string) iter.Seq2[BatchAnswer, error]
	// CancelBatch asks the vendor to stop batch id; the lines it did not
	// run end as cancelled.
	CancelBatch(ctx context.Context, id string) error
}

// ErrBatchUnsupported is returned by a Batcher whose endpoint has no batch
// API.
var ErrBatchUnsupported = errors.New("llm: this endpoint has no batch API")

// BatchRequest is one line of a vendor batch.
type BatchRequest struct {
	// CustomID is the line's id at the vendor (unique in the batch;
	// [A-Za-z0-9_-], at most 64 characters, as the strictest vendor asks).
	CustomID string
	// Request is the call, Model set.
	Request *Request
}

// BatchState is how far a vendor batch is.
type BatchState string

// Batch states.
const (
	// BatchRunning: the vendor is still at it (validating, in progress,
	// finalizing, cancelling).
	BatchRunning BatchState = "running"
	// BatchEnded: the vendor is done and has an answer for every line it
	// ran; lines it did not run (the batch expired or was cancelled) are
	// answered with an error.
	BatchEnded BatchState = "ended"
	// BatchFailed: the batch as a whole failed (its input was refused):
	// no line ran, none was billed.
	BatchFailed BatchState = "failed"
)

// BatchInfo is what a vendor says of one batch.
type BatchInfo struct {
	ID      string     // the vendor's id
	State   BatchState // normalised
	Status  string     // the vendor's own word: completed, expired, ended, BATCH_STATE_SUCCEEDED, ...
	Created time.Time
	Total   int    // lines, when the vendor says
	Done    int    // lines finished, succeeded or not, when the vendor says
	Message string // why a failed batch failed
}

// BatchAnswer is the answer of one line of an ended batch.
type BatchAnswer struct {
	CustomID     string
	Text         string
	ToolCalls    []ToolCall
	FinishReason FinishReason
	Usage        Usage
	// Err is set when the line failed: a vendor error (its Kind as for a
	// call), or a line the vendor did not run because the batch expired
	// or was cancelled (KindUnavailable, Code "batch_expired" or
	// "batch_cancelled"), which another try may run.
	Err *Error
}

// Codes of the lines a vendor did not run.
const (
	CodeBatchExpired   = "batch_expired"
	CodeBatchCancelled = "batch_cancelled"
)
