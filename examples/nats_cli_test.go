package examples_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/procgroup"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// natsCLIVersion is the natscli release the example is tested with.
const natsCLIVersion = "v0.5.1"

// natsCLI returns the nats binary: $NATS_CLI when set, else one built from
// the Go module proxy into a temporary GOBIN.
func natsCLI(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NATS_CLI"); p != "" {
		return p
	}
	bin := t.TempDir()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the nats CLI example needs the go command: %v", err)
	}
	// The go install (and its compiles, when the test ends first) dies
	// with the test process (procgroup).
	cmd := procgroup.Command(t.Context(), goTool, "install", "github.com/nats-io/natscli/nats@"+natsCLIVersion)
	cmd.Dir = t.TempDir() // outside this module: natscli's own go.mod decides
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := procgroup.Run(cmd.CombinedOutput)
	require.NoError(t, err, "building the nats CLI from the module proxy:\n%s", out)
	return filepath.Join(bin, "nats")
}

func TestNatsCLIExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the nats CLI")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	nats := natsCLI(t)

	srv := natstest.Server(t)
	m := mock.New(mock.Config{Text: "switchyards sort freight cars"})
	r, err := policy.NewRouter([]policy.Group{{Name: "demo", Deployments: []policy.Deployment{{Name: "mock-a", Model: "mock-1", Provider: m}}}})
	require.NoError(t, err)
	w, err := worker.New(natstest.Connect(t, srv), r, worker.Config{
		Groups: []string{"demo"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready in 10s")
	}

	runCtx, stop := context.WithTimeout(context.Background(), 60*time.Second)
	defer stop()
	cmd := procgroup.Command(runCtx, "sh", filepath.Join("nats-cli", "job.sh"), "what do switchyards do?")
	cmd.Env = append(os.Environ(), "NATS_URL="+srv.ClientURL(), "NATS="+nats, "JOB=cli-example-1", "HOME="+t.TempDir())
	out, err := procgroup.Run(cmd.CombinedOutput)
	require.NoError(t, err, "job.sh:\n%s", out)
	s := string(out)
	require.Contains(t, s, `"type":"chunk"`, "the events stream")
	require.Contains(t, s, `"delta":"freight "`)
	require.Contains(t, s, `"status":"ok"`)
	require.Contains(t, s, `"text":"switchyards sort freight cars"`)
	require.Contains(t, s, `"metadata":{"from":"nats-cli"}`)
	require.EqualValues(t, 1, m.Calls())
	require.Equal(t, "what do switchyards do?", strings.TrimSpace(m.Requests()[0].Messages[0].Text()))
}
