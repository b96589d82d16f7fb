package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/app"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The `make run` path: an embedded server, the demo group, and the gateway
// in the worker's process, announced with a curl line and an SDK snippet.
func TestWorkerServesTheGatewayInProcess(t *testing.T) {
	env := baseEnv(t)
	env.EmbeddedAddr = "127.0.0.1:-1"
	env.HTTPAddr = "127.0.0.1:0"
	var console syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, env, app.Options{
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Console: &console,
			OnGateway: func(a string) { addr <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	})
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("worker: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no gateway in 20s")
	}
	require.Eventually(t, func() bool { return strings.Contains(console.String(), "curl -sN http://"+a+"/v1/chat/completions") }, 20*time.Second, 10*time.Millisecond)
	require.Contains(t, console.String(), `OpenAI(base_url="http://`+a+`/v1"`)

	c := openai.NewClient(option.WithBaseURL("http://"+a+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	r, err := c.Chat.Completions.New(rctx, openai.ChatCompletionNewParams{Model: "demo", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	require.NoError(t, err)
	require.NotEmpty(t, r.Choices[0].Message.Content)
}
