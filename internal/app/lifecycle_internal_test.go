package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/tenant"
)

// TestReloadSaysWhatItDidNotApply: a SIGHUP used to log every group of the
// new file as reloaded, though new groups and tenants need a restart.
func TestReloadSaysWhatItDidNotApply(t *testing.T) {
	t.Parallel()
	m, err := config.ParseModels("models.yaml", []byte(`
groups:
  demo:
    deployments: [{name: a, provider: mock}]
  extra:
    deployments: [{name: b, provider: mock}]
tenants:
  acme: {budget: {tokens: 2000}}
  newco: {budget: {tokens: 10}}
`))
	require.NoError(t, err)
	run := running{groups: []string{"demo", "old"}, tenants: []string{"acme"}, budgets: map[string]tenant.Limit{"acme": {Tokens: 1000, Window: 24 * 3600e9}}}
	require.Equal(t, []string{
		"group extra is not served (no consumer until a restart)",
		"tenant newco is new (its keys and budget apply after a restart)",
		"the budget of tenant acme changed (it applies after a restart)",
		"group old is gone from the file but still consumed until a restart",
	}, run.reloadNotes(m))
	same := running{groups: []string{"demo", "extra"}, tenants: []string{"acme", "newco"}, budgets: budgetLimits(m)}
	require.Empty(t, same.reloadNotes(m))
}

// TestReadyBannerNamesAServedGroup: the banner suggested the demo group even
// when the model file does not serve it.
func TestReadyBannerNamesAServedGroup(t *testing.T) {
	t.Parallel()
	require.Contains(t, readyBanner([]string{"demo", "chat"}), `submit "Tell me about switchyards"`)
	require.Contains(t, readyBanner([]string{"chat", "cheap"}), `submit -g chat "Tell me about switchyards"`)
	require.NotContains(t, readyBanner([]string{"chat"}), "demo")
}
