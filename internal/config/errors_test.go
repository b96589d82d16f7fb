package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestModelFileErrorsSpeakTheUsersTerms pins the message of each mistake in
// a model file: file, line, the key's path, what was written and what is
// wanted, valid values listed, one line per error.
func TestModelFileErrorsSpeakTheUsersTerms(t *testing.T) {
	t.Setenv("EMPTY_KEY", "")
	t.Setenv("ANTHROPIC_API_KEY", "")
	const dep = "    deployments: [{name: a, provider: mock}]\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"duration without a unit", "groups:\n  g:\n    timeouts: {ttft: 10}\n" + dep,
			"config: models.yaml:3: groups.g.timeouts.ttft: 10 needs a unit, for example 10s"},
		{"quoted duration without a unit", "groups:\n  g:\n    timeouts:\n      idle: \"30\"\n" + dep,
			"config: models.yaml:4: groups.g.timeouts.idle: 30 needs a unit, for example 30s"},
		{"not a duration", "groups:\n  g:\n    breaker: {cooldown: soon}\n" + dep,
			`config: models.yaml:3: groups.g.breaker.cooldown: "soon" is not a duration (for example 500ms, 30s, 5m, 1h30m)`},
		{"not a whole number", "groups:\n  g:\n    retry:\n      max_retries: two\n" + dep,
			`config: models.yaml:4: groups.g.retry.max_retries: "two" is not a whole number`},
		{"not a number", "groups:\n  g:\n    retry: {jitter: lots}\n" + dep,
			`config: models.yaml:3: groups.g.retry.jitter: "lots" is not a number`},
		{"not a boolean", "groups:\n  g:\n    breaker: {disabled: maybe}\n" + dep,
			`config: models.yaml:3: groups.g.breaker.disabled: "maybe" is not true or false`},
		{"mock duration", "groups:\n  g:\n    deployments:\n      - name: a\n        provider: mock\n        mock: {ttft: 5}\n",
			"config: models.yaml:6: groups.g.deployments[0].mock.ttft: 5 needs a unit, for example 5s"},
		{"misspelt group key", "groups:\n  g:\n    stratgy: priority\n" + dep,
			`config: models.yaml:3: groups.g: unknown key "stratgy"; did you mean "strategy"?`},
		{"misspelt deployment key", "groups:\n  g:\n    deployments:\n      - name: a\n        provder: mock\n",
			`config: models.yaml:5: groups.g.deployments[0]: unknown key "provder"; did you mean "provider"?`},
		{"misspelt top-level key", "grups:\n  g:\n" + dep,
			`config: models.yaml:1: the top level: unknown key "grups"; did you mean "groups"?`},
		{"enumeration lists its values", "groups:\n  g:\n    strategy: round_robin\n" + dep,
			`config: models.yaml:3: groups.g.strategy: unknown "round_robin" (want priority, weighted, least_busy, lowest_latency, usage_based or cost)`},
		{"error kinds listed", "groups:\n  g:\n    on_error: {ratelimited: fail}\n" + dep,
			`config: models.yaml:3: groups.g.on_error: unknown error kind "ratelimited" (want one of unknown, rate_limited,`},
		{"empty key variable is named", "groups:\n  g:\n    deployments:\n      - name: a\n        provider: openai\n        model: gpt-4o\n        api_key: ${EMPTY_KEY}\n",
			"config: models.yaml:7: groups.g.deployments[0].api_key: environment variable EMPTY_KEY is set but empty"},
		{"missing default key variable is named", "groups:\n  g:\n    deployments:\n      - name: a\n        provider: anthropic\n        model: claude-sonnet-4-5\n",
			"config: models.yaml:4: groups.g.deployments[0]: no API key: set ANTHROPIC_API_KEY, or name the variable that holds it (api_key: ${MY_KEY})"},
		{"deployment name in two groups", "groups:\n  g:\n    deployments: [{name: a, provider: mock}]\n  h:\n    deployments:\n      - name: a\n        provider: mock\n",
			`config: models.yaml:6: groups.h.deployments[0].name: deployment "a" is also in group "g": names are fleet-wide (tenant keys, breakers, rate limits and metrics refer to them), give each its own`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseModels("models.yaml", []byte(tc.yaml))
			require.Error(t, err)
			if strings.HasSuffix(tc.want, ",") {
				require.Contains(t, err.Error(), tc.want)
			} else {
				require.EqualError(t, err, tc.want)
			}
			require.NotContains(t, err.Error(), "\n", "one line")
			require.NotContains(t, err.Error(), "Go struct", "Go's terms")
		})
	}
}

// TestEveryErrorOnItsOwnLine: several mistakes, several lines, each whole.
func TestEveryErrorOnItsOwnLine(t *testing.T) {
	t.Parallel()
	_, err := ParseModels("models.yaml", []byte("groups:\n  g:\n    strategy: x\n    fallbacks: [nowhere]\n    deployments: [{name: a, provider: mock}]\n"))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 2, err.Error())
	for _, l := range lines {
		require.True(t, strings.HasPrefix(l, "config: models.yaml:"), l)
	}
}
