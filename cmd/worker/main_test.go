package main

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestWorkerCommandLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", "models.yaml"}, "unknown flag --config: settings come from the environment; did you mean SWITCHYARD_CONFIG=models.yaml?"},
		{[]string{"--concurrency=8"}, "unknown flag --concurrency: settings come from the environment; did you mean SWITCHYARD_CONCURRENCY=8?"},
		{[]string{"--nats-url", "nats://x:4222"}, "unknown flag --nats-url: settings come from the environment; did you mean NATS_URL=nats://x:4222?"},
		{[]string{"--frobnicate"}, "unknown flag --frobnicate: settings come from the environment"},
		{[]string{"models.yaml"}, `worker takes no arguments, got "models.yaml": settings come from the environment`},
	} {
		_, err := parseArgs(tc.args, &bytes.Buffer{})
		require.EqualError(t, err, tc.want, "%q", tc.args)
	}
	f, err := parseArgs([]string{"--check"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.True(t, f.check)
	f, err = parseArgs([]string{"--print-config"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.True(t, f.printConfig)
	_, err = parseArgs([]string{"--check", "--print-config"}, &bytes.Buffer{})
	require.Error(t, err)
}

// TestWorkerHelpListsEveryVariable: worker --help is generated from the
// configuration struct, so a new variable shows up in it with its default.
func TestWorkerHelpListsEveryVariable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := parseArgs([]string{"--help"}, &out)
	require.ErrorIs(t, err, pflag.ErrHelp)
	for _, v := range config.Variables() {
		require.NotEmpty(t, v.Help, "%s has no help tag", v.Name)
		line := fmt.Sprintf("  %s ", v.Name)
		require.Contains(t, out.String(), line)
		if v.Default != "" {
			require.Regexp(t, v.Name+` .*\(default `+regexp.QuoteMeta(v.Default)+`\)`, out.String())
		}
	}
	require.Contains(t, out.String(), "--check")
	require.Contains(t, out.String(), "--print-config")
	require.Contains(t, out.String(), "exit status:")
	require.Contains(t, out.String(), "SIGHUP")
}

func TestSplitErrorsGivesOneLineEach(t *testing.T) {
	t.Parallel()
	err := errors.Join(errors.New("a"), errors.Join(errors.New("b"), errors.New("c")))
	require.Len(t, splitErrors(err), 3)
	require.Len(t, splitErrors(errors.New("x")), 1)
}
