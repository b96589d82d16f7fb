package openai_test

// The replay (internal/vendortest.OpenAIBatches) follows OpenAI's Batch API
// as documented at https://platform.openai.com/docs/guides/batch and in the
// API reference (https://platform.openai.com/docs/api-reference/batch,
// https://platform.openai.com/docs/api-reference/files): a JSONL input file
// uploaded with purpose "batch", a batch created on it for
// /v1/chat/completions with a 24h window, polled from validating through
// in_progress to completed / expired / cancelled / failed, and its output
// and error files.

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/vendortest"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/openai"
)

func TestBatcher(t *testing.T) {
	t.Parallel()
	vendortest.RunBatcherTests(t, vendortest.BatcherCase{
		Start: vendortest.OpenAIBatches,
		New: func(t *testing.T, url string) llm.Batcher {
			c, err := openai.New(openai.Options{APIKey: "sk-test", BaseURL: url})
			require.NoError(t, err)
			return c
		},
		Model: "gpt-4o-mini", NotRunAnswered: true, CanFail: true, Named: true,
	})
}

func TestAzureHasNoBatchAPI(t *testing.T) {
	t.Parallel()
	c, err := openai.New(openai.Options{APIKey: "k", AzureEndpoint: "https://x.openai.azure.com", AzureDeployment: "d"})
	require.NoError(t, err)
	require.False(t, c.SupportsBatch())
	_, err = c.SubmitBatch(t.Context(), "ref", nil)
	require.ErrorIs(t, err, llm.ErrBatchUnsupported)
}
