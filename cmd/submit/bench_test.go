package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBenchAgainstAWorker(t *testing.T) {
	var logs syncBuf
	startWorker(t, &logs)
	tests := []struct {
		name      string
		args      []string
		wantOK    int
		wantFirst bool
	}{
		{name: "full speed, streamed", args: []string{"-g", "gpt", "-n", "30", "--concurrency", "4"}, wantOK: 30, wantFirst: true},
		{name: "fixed rate, result only", args: []string{"-g", "gpt", "-n", "10", "--rate", "200", "--stream=false", "--prompt-bytes", "64"}, wantOK: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			require.NoError(t, run(t.Context(), append([]string{"bench"}, tt.args...), nil, &out, &errw), errw.String())
			m := regexp.MustCompile(`group gpt: (\d+) jobs, (\d+) ok`).FindStringSubmatch(out.String())
			require.NotNil(t, m, out.String())
			ok, _ := strconv.Atoi(m[2])
			require.Equal(t, tt.wantOK, ok, out.String())
			require.Contains(t, out.String(), "completion   p50")
			if tt.wantFirst {
				require.Contains(t, out.String(), "first chunk  p50")
			} else {
				require.NotContains(t, out.String(), "first chunk")
			}
			require.NotContains(t, out.String(), "errors")
		})
	}

	var out, errw bytes.Buffer
	err := run(t.Context(), []string{"bench", "-g", "nosuch", "-n", "2", "--timeout", "10s"}, nil, &out, &errw)
	require.Error(t, err, "no job ended ok")
	require.Contains(t, out.String(), "unknown_group=2")
}

func TestBenchRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bench", "--no-such-flag"},
		{"bench", "-n", "0"},
		{"bench", "--rate", "-1"},
		{"bench", "--encoding", "xml"},
		{"bench", "extra-arg"},
	} {
		var out, errw bytes.Buffer
		err := run(t.Context(), args, nil, &out, &errw)
		var ee *exitError
		require.ErrorAs(t, err, &ee, "%v", args)
		require.Equal(t, 2, ee.code, "%v", args)
	}
}
