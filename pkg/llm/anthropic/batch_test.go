package anthropic_test

// The replay (internal/vendortest.AnthropicBatches) follows Anthropic's
// Message Batches as documented at
// https://docs.anthropic.com/en/docs/build-with-claude/batch-processing and
// in the API reference (https://docs.anthropic.com/en/api/creating-message-batches
// and the retrieving, listing, canceling and results pages): one POST of
// {custom_id, params} requests, processing_status in_progress -> ended
// (canceling -> ended), request_counts, and the results JSONL with
// succeeded / errored / canceled / expired results in no particular order.

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/vendortest"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/anthropic"
)

func TestBatcher(t *testing.T) {
	t.Parallel()
	vendortest.RunBatcherTests(t, vendortest.BatcherCase{
		Start: vendortest.AnthropicBatches,
		New: func(t *testing.T, url string) llm.Batcher {
			c, err := anthropic.New(anthropic.Options{APIKey: "sk-ant-test", BaseURL: url})
			require.NoError(t, err)
			return c
		},
		Model: "claude-haiku-4-5", NotRunAnswered: true,
	})
}

func TestBedrockAndVertexHaveNoBatchAPI(t *testing.T) {
	t.Parallel()
	c, err := anthropic.New(anthropic.Options{Vertex: &anthropic.VertexOptions{Project: "p", Region: "us-east5"}})
	require.NoError(t, err)
	require.False(t, c.SupportsBatch())
	_, err = c.SubmitBatch(t.Context(), "ref", nil)
	require.ErrorIs(t, err, llm.ErrBatchUnsupported)
}
