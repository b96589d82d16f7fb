package spell

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClosest(t *testing.T) {
	t.Parallel()
	cmds := []string{"cancel", "batch", "watch", "status", "bench", "help"}
	for _, tc := range []struct {
		word, want string
		ok         bool
	}{
		{"stauts", "status", true},
		{"STATUS", "status", true},
		{"bacth", "batch", true},
		{"wach", "watch", true},
		{"cancle", "cancel", true},
		{"stat", "status", true}, // truncated
		{"hello", "", false},     // two edits from help, but help has 4 letters
		{"tell", "", false},
		{"summarise", "", false},
		{"x", "", false},
	} {
		got, ok := Closest(tc.word, cmds)
		require.Equal(t, tc.ok, ok, tc.word)
		require.Equal(t, tc.want, got, tc.word)
	}
	vars := []string{"SWITCHYARD_CONCURRENCY", "SWITCHYARD_CONFIG", "SWITCHYARD_GROUPS"}
	for word, want := range map[string]string{
		"SWITCHYARD_CONCURENCY": "SWITCHYARD_CONCURRENCY",
		"SWITCHYARD_GROUP":      "SWITCHYARD_GROUPS",
		"SWITCHYARD_CONFG":      "SWITCHYARD_CONFIG",
	} {
		got, ok := Closest(word, vars)
		require.True(t, ok, word)
		require.Equal(t, want, got, word)
	}
	_, ok := Closest("SWITCHYARD_TENANT", vars)
	require.False(t, ok)
	got, ok := Closest("stratgy", []string{"strategy", "fallbacks", "retry"})
	require.True(t, ok)
	require.Equal(t, "strategy", got)
}
