package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDeploymentOptionsValidateNamesTheBadField: each field a deployment
// may get wrong is named by Validate's error, the first in field order
// when several are wrong, and valid options (zero, or 0 as a price) pass.
func TestDeploymentOptionsValidateNamesTheBadField(t *testing.T) {
	t.Parallel()
	neg := -time.Second
	for _, tc := range []struct {
		name string
		o    DeploymentOptions
		want string // "" when valid
	}{
		{"zero", DeploymentOptions{}, ""},
		{"free model", DeploymentOptions{InputCostPerMTok: usd(0), OutputCostPerMTok: usd(0)}, ""},
		{"weight", DeploymentOptions{Weight: -1}, "weight: -1 < 0"},
		{"rpm", DeploymentOptions{RPM: -1}, "rpm: -1 < 0"},
		{"tpm", DeploymentOptions{TPM: -2}, "tpm: -2 < 0"},
		{"max_concurrency", DeploymentOptions{MaxConcurrency: -1}, "max_concurrency: -1 < 0"},
		{"context_window", DeploymentOptions{ContextWindow: -1}, "context_window: -1 < 0"},
		{"cooldown", DeploymentOptions{Cooldown: &neg}, "cooldown: negative duration"},
		{"max_output", DeploymentOptions{MaxOutput: -1}, "max_output: -1 < 0"},
		{"input price", DeploymentOptions{InputCostPerMTok: usd(-0.5)}, "input_cost_per_mtok: -0.5 < 0"},
		{"output price", DeploymentOptions{OutputCostPerMTok: usd(-1)}, "output_cost_per_mtok: -1 < 0"},
		{"batch input price", DeploymentOptions{BatchInputCostPerMTok: usd(-1)}, "batch_input_cost_per_mtok: -1 < 0"},
		{"batch output price", DeploymentOptions{BatchOutputCostPerMTok: usd(-1)}, "batch_output_cost_per_mtok: -1 < 0"},
		{"adaptive", DeploymentOptions{Adaptive: &AdaptiveOptions{Min: 5, Max: 2}}, "adaptive_concurrency: min 5 > max 2"},
		{"timeouts", DeploymentOptions{Timeouts: TimeoutOptions{TTFT: -1}}, "timeouts: negative duration"},
		{"limits before prices", DeploymentOptions{MaxOutput: -1, InputCostPerMTok: usd(-1)}, "max_output: -1 < 0"},
		{"prices before adaptive", DeploymentOptions{OutputCostPerMTok: usd(-1), Adaptive: &AdaptiveOptions{Min: -1}}, "output_cost_per_mtok: -1 < 0"},
	} {
		err := tc.o.Validate()
		if tc.want == "" {
			require.NoError(t, err, tc.name)
			continue
		}
		require.EqualError(t, err, tc.want, tc.name)
	}
}
