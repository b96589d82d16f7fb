package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOptionErrorsAreOneType: whatever option of a group or deployment is
// bad, its validation returns an *OptionError naming the option's path, and
// its message is that path, a colon and the reason.
func TestOptionErrorsAreOneType(t *testing.T) {
	t.Parallel()
	neg := -1.0
	groups := []struct {
		key string
		set func(*GroupOptions)
	}{
		{"strategy", func(o *GroupOptions) { o.Strategy = "fastest" }},
		{"mid_stream", func(o *GroupOptions) { o.MidStream = "resume" }},
		{"max_fallbacks", func(o *GroupOptions) { o.MaxFallbacks = -1 }},
		{"retry.max_retries", func(o *GroupOptions) { o.Retry.MaxRetries = -2 }},
		{"retry.backoff.initial", func(o *GroupOptions) { o.Retry.Backoff = BackoffOptions{Initial: time.Second, Max: time.Millisecond} }},
		{"retry.jitter", func(o *GroupOptions) { o.Retry.Jitter = 2 }},
		{"retry.budget.max_rate", func(o *GroupOptions) { o.Retry.Budget.MaxRate = 2 }},
		{"retry.budget.min_concurrency", func(o *GroupOptions) { o.Retry.Budget.MinConcurrency = -1 }},
		{"breaker.failure_rate", func(o *GroupOptions) { o.Breaker.FailureRate = 2 }},
		{"on_error", func(o *GroupOptions) { o.OnError = map[string]Action{"nonsense": ActionFail} }},
		{"hedge.percentile", func(o *GroupOptions) { o.Hedge = &HedgeOptions{Percentile: 100} }},
		{"vendor_batch.after", func(o *GroupOptions) { o.VendorBatch = &VendorBatchOptions{After: time.Hour, MaxWait: time.Hour} }},
	}
	for _, c := range groups {
		o := fast()
		c.set(&o)
		requireOptionError(t, o.Validate(), c.key)
	}
	deps := []struct {
		key string
		o   DeploymentOptions
	}{
		{"weight", DeploymentOptions{Weight: -1}},
		{"rpm", DeploymentOptions{RPM: -1}},
		{"max_output", DeploymentOptions{MaxOutput: -1}},
		{"input_cost_per_mtok", DeploymentOptions{InputCostPerMTok: &neg}},
	}
	for _, c := range deps {
		requireOptionError(t, c.o.Validate(), c.key)
	}
}

func requireOptionError(t *testing.T, err error, key string) {
	t.Helper()
	var oe *OptionError
	require.True(t, errors.As(err, &oe), "%s: %v is not an *OptionError", key, err)
	require.Equal(t, key, oe.Key)
	require.Equal(t, key+": "+oe.Reason, err.Error())
}
