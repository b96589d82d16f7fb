package vendortest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
)

// BatcherCase is one provider's llm.Batcher under RunBatcherTests.
type BatcherCase struct {
	// Start starts the vendor's replay (OpenAIBatches, ...).
	Start func(t testing.TB) *Batches
	// New returns the provider for a replay's URL.
	New func(t *testing.T, url string) llm.Batcher
	// Model is the model of the requests.
	Model string
	// NotRunAnswered: the vendor answers the lines it did not run (an
	// expired or cancelled batch) with an error; false: it leaves them
	// out (Gemini).
	NotRunAnswered bool
	// CanFail: the vendor can fail a batch as a whole (not Anthropic).
	CanFail bool
	// Named: FindBatch finds a batch by its ref (not Anthropic, which
	// finds it by size and time).
	Named bool
}

func batchRequests(model string, n int) []llm.BatchRequest {
	out := make([]llm.BatchRequest, n)
	for i := range out {
		out[i] = llm.BatchRequest{CustomID: fmt.Sprintf("line-%d", i), Request: &llm.Request{
			Model: model, MaxTokens: 50, Messages: []llm.Message{{Role: llm.RoleUser, Content: fmt.Sprintf("q%d", i)}},
		}}
	}
	return out
}

// ended polls b's batch id until it ends (bounded).
func ended(t *testing.T, p llm.Batcher, id string) *llm.BatchInfo {
	t.Helper()
	var states []llm.BatchState
	for range 20 {
		info, err := p.PollBatch(t.Context(), id)
		require.NoError(t, err)
		states = append(states, info.State)
		if info.State != llm.BatchRunning {
			return info
		}
	}
	t.Fatalf("batch %s never ended: %v", id, states)
	return nil
}

func answers(t *testing.T, p llm.Batcher, id string) map[string]llm.BatchAnswer {
	t.Helper()
	out := map[string]llm.BatchAnswer{}
	for a, err := range p.BatchAnswers(t.Context(), id) {
		require.NoError(t, err)
		require.NotContains(t, out, a.CustomID, "one answer per line")
		out[a.CustomID] = a
	}
	return out
}

// RunBatcherTests runs the same checks of an llm.Batcher against its
// vendor's replay: upload and create, poll through in progress to the end,
// the answers (text, usage, a failed line's kind), an expired batch, a
// cancelled one, a failed one, and FindBatch.
func RunBatcherTests(t *testing.T, c BatcherCase) {
	t.Run("submit, poll, answers", func(t *testing.T) { batchAnswers(t, c) })

	t.Run("expired: the lines not run", func(t *testing.T) { batchExpired(t, c) })

	t.Run("cancelled", func(t *testing.T) { batchCancelled(t, c) })

	if c.CanFail {
		t.Run("failed as a whole", func(t *testing.T) { batchFailed(t, c) })
	}

	t.Run("find a submitted batch", func(t *testing.T) { batchFind(t, c) })

	t.Run("a cancelled context", func(t *testing.T) { batchCancelledContext(t, c) })
}

// batchAnswers checks a batch run to its end and its answers.
func batchAnswers(t *testing.T, c BatcherCase) {
	t.Parallel()
	srv := c.Start(t)
	srv.SetAnswer(func(l Line) Outcome {
		switch l.CustomID {
		case "line-1":
			return Outcome{Status: 400, ErrType: "invalid_request_error", ErrMessage: "bad line"}
		case "line-2":
			return Outcome{Status: 429, ErrType: "rate_limit_error", ErrMessage: "slow down"}
		}
		return Outcome{}
	})
	p := c.New(t, srv.URL)
	require.True(t, p.SupportsBatch())
	info, err := p.SubmitBatch(t.Context(), "ref-1", batchRequests(c.Model, 4))
	require.NoError(t, err)
	require.NotEmpty(t, info.ID)
	require.Equal(t, llm.BatchRunning, info.State)

	created := srv.Created()
	require.Len(t, created, 1)
	require.Equal(t, lastSegment(info.ID), created[0].ID)
	require.Len(t, created[0].Lines, 4)
	for i, l := range created[0].Lines {
		require.Equal(t, fmt.Sprintf("line-%d", i), l.CustomID)
		require.Equal(t, fmt.Sprintf("q%d", i), l.Prompt)
		require.Contains(t, l.Model, c.Model)
	}
	if c.Named {
		require.Equal(t, "ref-1", created[0].Ref)
	}

	srv.SetRunning(2)
	var states []llm.BatchState
	for range 3 {
		info, err = p.PollBatch(t.Context(), info.ID)
		require.NoError(t, err)
		states = append(states, info.State)
	}
	require.Equal(t, []llm.BatchState{llm.BatchRunning, llm.BatchRunning, llm.BatchEnded}, states, "in progress, then ended")

	got := answers(t, p, info.ID)
	require.Len(t, got, 4)
	for _, id := range []string{"line-0", "line-3"} {
		a := got[id]
		require.Nil(t, a.Err, id)
		require.Equal(t, "answer to q"+id[len(id)-1:], a.Text)
		require.Equal(t, llm.FinishStop, a.FinishReason)
		require.Equal(t, llm.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}, a.Usage)
	}
	require.NotNil(t, got["line-1"].Err)
	require.Equal(t, llm.KindBadRequest, got["line-1"].Err.Kind, "%v", got["line-1"].Err)
	require.NotNil(t, got["line-2"].Err)
	require.Equal(t, llm.KindRateLimited, got["line-2"].Err.Kind, "%v", got["line-2"].Err)
	require.Equal(t, 4, srv.BilledLines(), "every line ran")
}

// batchExpired checks that an expired batch's unrun lines are not answered ok.
func batchExpired(t *testing.T, c BatcherCase) {
	t.Parallel()
	srv := c.Start(t)
	p := c.New(t, srv.URL)
	srv.SetRunning(0)
	srv.ExpireNext()
	info, err := p.SubmitBatch(t.Context(), "ref-e", batchRequests(c.Model, 4))
	require.NoError(t, err)
	info = ended(t, p, info.ID)
	require.Equal(t, llm.BatchEnded, info.State)
	got := answers(t, p, info.ID)
	for _, id := range []string{"line-0", "line-1"} {
		require.Nil(t, got[id].Err, id)
	}
	for _, id := range []string{"line-2", "line-3"} {
		if !c.NotRunAnswered {
			require.NotContains(t, got, id, "a line not run has no answer")
			continue
		}
		require.NotNil(t, got[id].Err, id)
		require.Equal(t, llm.CodeBatchExpired, got[id].Err.Code)
		require.Equal(t, llm.KindUnavailable, got[id].Err.Kind)
	}
	require.Equal(t, 2, srv.BilledLines())
}

// batchCancelled checks a batch cancelled before any line ran.
func batchCancelled(t *testing.T, c BatcherCase) {
	t.Parallel()
	srv := c.Start(t)
	p := c.New(t, srv.URL)
	srv.Hold()
	info, err := p.SubmitBatch(t.Context(), "ref-c", batchRequests(c.Model, 3))
	require.NoError(t, err)
	require.NoError(t, p.CancelBatch(t.Context(), info.ID))
	info = ended(t, p, info.ID)
	require.Equal(t, llm.BatchEnded, info.State)
	got := answers(t, p, info.ID)
	if c.NotRunAnswered {
		require.Len(t, got, 3)
		for id, a := range got {
			require.NotNil(t, a.Err, id)
			require.Equal(t, llm.CodeBatchCancelled, a.Err.Code, id)
		}
	} else {
		require.Empty(t, got)
	}
	require.Zero(t, srv.BilledLines())
}

// batchFailed checks a batch the vendor failed as a whole.
func batchFailed(t *testing.T, c BatcherCase) {
	t.Parallel()
	srv := c.Start(t)
	p := c.New(t, srv.URL)
	srv.FailNext("the input file has a bad line")
	info, err := p.SubmitBatch(t.Context(), "ref-f", batchRequests(c.Model, 2))
	require.NoError(t, err)
	info = ended(t, p, info.ID)
	require.Equal(t, llm.BatchFailed, info.State)
	require.NotEmpty(t, info.Message)
}

// batchFind checks FindBatch.
func batchFind(t *testing.T, c BatcherCase) {
	t.Parallel()
	srv := c.Start(t)
	p := c.New(t, srv.URL)
	since := time.Now()
	none, err := p.FindBatch(t.Context(), "ref-x", since, 3)
	require.NoError(t, err)
	require.Nil(t, none)
	_, err = p.SubmitBatch(t.Context(), "ref-other", batchRequests(c.Model, 2))
	require.NoError(t, err)
	mine, err := p.SubmitBatch(t.Context(), "ref-x", batchRequests(c.Model, 3))
	require.NoError(t, err)
	found, err := p.FindBatch(t.Context(), "ref-x", since, 3)
	require.NoError(t, err)
	require.NotNil(t, found)
	require.Equal(t, mine.ID, found.ID)
}

// batchCancelledContext checks that a cancelled context submits nothing.
func batchCancelledContext(t *testing.T, c BatcherCase) {
	t.Parallel()
	srv := c.Start(t)
	p := c.New(t, srv.URL)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := p.SubmitBatch(ctx, "ref", batchRequests(c.Model, 1))
	require.Error(t, err)
	require.Empty(t, srv.Created())
	require.True(t, slices.Contains([]llm.Kind{llm.KindCancelled, llm.KindConnection}, llm.KindOf(err)), "%v", err)
}

func lastSegment(id string) string {
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '/' {
			return id[i+1:]
		}
	}
	return id
}
