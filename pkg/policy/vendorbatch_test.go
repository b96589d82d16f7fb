package policy

import (
	"context"
	"iter"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// batching is a provider with a batch API (or one that says it has none).
type batching struct {
	*mock.Provider
	supports bool
}

func (b batching) SupportsBatch() bool           { return b.supports }
func (batching) BatchLimits() (lines, bytes int) { return 10, 1 << 20 }
func (batching) SubmitBatch(context.Context, string, []llm.BatchRequest) (*llm.BatchInfo, error) {
	return nil, nil
}
func (batching) FindBatch(context.Context, string, time.Time, int) (*llm.BatchInfo, error) {
	return nil, nil
}
func (batching) PollBatch(context.Context, string) (*llm.BatchInfo, error) { return nil, nil }
func (batching) BatchAnswers(context.Context, string) iter.Seq2[llm.BatchAnswer, error] {
	return func(func(llm.BatchAnswer, error) bool) {}
}
func (batching) CancelBatch(context.Context, string) error { return nil }

func TestVendorBatchOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o   VendorBatchOptions
		err string
	}{
		{VendorBatchOptions{}, ""},
		{VendorBatchOptions{After: time.Minute, MaxWait: time.Hour}, ""},
		{VendorBatchOptions{After: -time.Second}, "vendor_batch.after"},
		{VendorBatchOptions{MaxWait: -time.Second}, "vendor_batch.max_wait"},
		{VendorBatchOptions{After: time.Hour, MaxWait: time.Hour}, "must be below max_wait"},
		{VendorBatchOptions{After: 25 * time.Hour}, "must be below max_wait 24h"},
	} {
		err := GroupOptions{VendorBatch: &tc.o}.Validate()
		if tc.err == "" {
			require.NoError(t, err, "%+v", tc.o)
			continue
		}
		require.ErrorContains(t, err, tc.err, "%+v", tc.o)
	}
	d := VendorBatchOptions{}.WithDefaults()
	require.Equal(t, VendorBatchOptions{After: 10 * time.Minute, MaxWait: 24 * time.Hour}, d)
}

// BatchTarget is the group's first deployment, by tier, whose provider has
// a batch API; none without vendor_batch or without such a deployment.
func TestBatchTarget(t *testing.T) {
	t.Parallel()
	plain := mock.New(mock.Config{})
	vb := &VendorBatchOptions{After: time.Minute}
	r, err := NewRouter([]Group{
		{Name: "off", Deployments: []Deployment{{Name: "a", Model: "gpt-4o-mini", Provider: batching{plain, true}}}},
		{Name: "on", Options: GroupOptions{VendorBatch: vb}, Deployments: []Deployment{
			{Name: "live", Model: "m", Provider: plain},
			{Name: "azure", Model: "m", Provider: batching{plain, false}},
			{Name: "second", Model: "gpt-4o", Provider: batching{plain, true}, Options: DeploymentOptions{Priority: 2}},
			{Name: "first", Model: "gpt-4o-mini", Provider: batching{plain, true}, Options: DeploymentOptions{Priority: 1}},
		}},
		{Name: "none", Options: GroupOptions{VendorBatch: vb}, Deployments: []Deployment{{Name: "live", Model: "m", Provider: plain}}},
	})
	require.NoError(t, err)
	_, ok := r.BatchTarget("off")
	require.False(t, ok, "no vendor_batch")
	_, ok = r.BatchTarget("none")
	require.False(t, ok, "no deployment with a batch API")
	_, ok = r.BatchTarget("missing")
	require.False(t, ok)
	bt, ok := r.BatchTarget("on")
	require.True(t, ok)
	require.Equal(t, "first", bt.Deployment)
	require.Equal(t, "gpt-4o-mini", bt.Model)
	require.Equal(t, 24*time.Hour, bt.Options.MaxWait)
	require.Equal(t, time.Minute, bt.Options.After)
	require.Positive(t, bt.Info.BatchInputPerMTok, "the resolved model's batch prices")
}
