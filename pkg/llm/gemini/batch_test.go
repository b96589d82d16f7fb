package gemini_test

// The replay (internal/vendortest.GeminiBatches) follows Gemini's batch mode
// as documented at https://ai.google.dev/gemini-api/docs/batch-mode and in
// the API reference https://ai.google.dev/api/batch-mode:
// models.batchGenerateContent with inline requests (each with metadata),
// the batch's long-running operation batches/{id} whose metadata.state goes
// BATCH_STATE_PENDING -> RUNNING -> SUCCEEDED / EXPIRED / CANCELLED /
// FAILED, and metadata.output.inlinedResponses.

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/vendortest"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/gemini"
)

func TestBatcher(t *testing.T) {
	t.Parallel()
	vendortest.RunBatcherTests(t, vendortest.BatcherCase{
		Start: vendortest.GeminiBatches,
		New: func(t *testing.T, url string) llm.Batcher {
			c, err := gemini.New(t.Context(), gemini.Options{APIKey: "gm-test", BaseURL: url})
			require.NoError(t, err)
			return c
		},
		Model: "gemini-2.5-flash", CanFail: true, Named: true,
	})
}
