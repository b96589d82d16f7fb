package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/apptest"
	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/pkg/bus"
)

const fakeKey = "sk-fake-0123456789abcdefSECRET"

// openAIServer replays OpenAI's chat completions streaming format
// (https://platform.openai.com/docs/api-reference/chat/streaming): SSE
// `data: {chat.completion.chunk}` lines, a usage-only chunk (stream_options
// include_usage), then `data: [DONE]`. A prompt containing "badkey" gets the
// documented 401 body, which echoes (part of) the key as OpenAI does.
func openAIServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model    string `json:"model"`
			Messages []struct {
				Content any `json:"content"`
			} `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		prompt := fmt.Sprint(body.Messages[len(body.Messages)-1].Content)
		if strings.Contains(prompt, "badkey") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, r.Header.Get("Authorization")[len("Bearer "):])
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i, word := range []string{"Hello", " from", " the", " local", " server"} {
			fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", body.Model, word)
			if i == 0 {
				fl.Flush()
			}
		}
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", body.Model)
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":5,\"total_tokens\":14}}\n\n", body.Model)
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startWorker runs a whole worker process in-process (embedded NATS, a model
// file with an openai deployment on the local server) and points submit at it.
func startWorker(t *testing.T, logs *syncBuf) {
	t.Helper()
	srv := openAIServer(t)
	dir := t.TempDir()
	models := filepath.Join(dir, "models.yaml")
	require.NoError(t, os.WriteFile(models, []byte(fmt.Sprintf(`
groups:
  gpt:
    retry: {max_retries: -1}
    deployments:
      - name: local-openai
        provider: openai
        model: gpt-4o-mini
        base_url: %s/v1
        api_key: ${FAKE_OPENAI_KEY}
`, srv.URL)), 0o600))
	t.Setenv("FAKE_OPENAI_KEY", fakeKey)
	t.Setenv("SWITCHYARD_CONFIG", models)
	t.Setenv("SWITCHYARD_DATA_DIR", dir)
	t.Setenv("SWITCHYARD_EMBEDDED_ADDR", "127.0.0.1:-1")
	t.Setenv("SWITCHYARD_METRICS_ADDR", "127.0.0.1:0")
	env, err := config.LoadEnv()
	require.NoError(t, err)
	t.Setenv("NATS_URL", apptest.Start(t, env, app.Options{
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Console: logs,
	}))
}

func TestSubmitStreamsFromOpenAIDeploymentAndNoKeyLeaks(t *testing.T) {
	var logs syncBuf
	startWorker(t, &logs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The CLI streams the tokens and prints a summary.
	var out, errOut bytes.Buffer
	require.NoError(t, run(ctx, []string{"-g", "gpt", "say hello"}, nil, &out, &errOut))
	require.Equal(t, "Hello from the local server\n", out.String())
	require.Contains(t, errOut.String(), "✓ ok")
	require.Contains(t, errOut.String(), "gpt/local-openai (gpt-4o-mini)")
	require.Contains(t, errOut.String(), "tokens 9 in, 5 out")

	// --json prints the result object as one line.
	out.Reset()
	require.NoError(t, run(ctx, []string{"--json", "-g", "gpt", "again"}, nil, &out, &errOut))
	var res bus.Result
	require.NoError(t, json.Unmarshal(out.Bytes(), &res))
	require.Equal(t, bus.StatusOK, res.Status)
	require.Equal(t, "Hello from the local server", res.Text)
	require.Greater(t, res.CostUSD, 0.0, "gpt-4o-mini is in the catalogue")

	// An auth failure whose vendor body echoes the key: the key must not
	// reach the result, the CLI output or the logs.
	out.Reset()
	err := run(ctx, []string{"--json", "-g", "gpt", "badkey please"}, nil, &out, &errOut)
	require.Error(t, err)
	require.NoError(t, json.Unmarshal(out.Bytes(), &res))
	require.Equal(t, bus.CodeAuth, res.Error.Code)

	// Everything this run produced, stored results included.
	stored := storedResults(t, 3)
	for name, s := range map[string]string{"logs": logs.String(), "stdout": out.String(), "stderr": errOut.String(), "stored results": strings.Join(stored, "\n")} {
		require.NotContains(t, s, fakeKey, "the key leaked into the %s", name)
		require.NotContains(t, s, fakeKey[len(fakeKey)-12:], "part of the key leaked into the %s", name)
	}
	require.Contains(t, strings.Join(stored, "\n"), "Incorrect API key provided", "the vendor's message is kept, redacted")
}

// storedResults returns the raw bodies of the n results in LLM_RESULTS. A
// client can see a result before the stream has stored it (core delivery
// and storage race on the server), so it waits for n to be stored.
func storedResults(t *testing.T, n uint64) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(os.Getenv("NATS_URL"))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(ctx, bus.StreamResults)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs >= n
	}, 10*time.Second, 10*time.Millisecond, "results stored")
	require.Equal(t, n, s.CachedInfo().State.Msgs, "results stored")
	var out []string
	for seq := s.CachedInfo().State.FirstSeq; seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		out = append(out, string(m.Data))
	}
	return out
}

// startDemo runs a worker with the built-in demo group (mock provider).
func startDemo(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("SWITCHYARD_CONFIG", "")
	t.Setenv("SWITCHYARD_DATA_DIR", dir)
	t.Setenv("SWITCHYARD_EMBEDDED_ADDR", "127.0.0.1:-1")
	t.Setenv("SWITCHYARD_METRICS_ADDR", "off")
	env, err := config.LoadEnv()
	require.NoError(t, err)
	t.Setenv("NATS_URL", apptest.Start(t, env, app.Options{}))
}

func TestSubmitSchemaAndToolsOnTheDemoGroup(t *testing.T) {
	startDemo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// --schema prints the validated object; --partial shows it filling in.
	var out, errOut bytes.Buffer
	require.NoError(t, run(ctx, []string{"--schema", "../../examples/person.schema.json", "--partial", "Invent a person"}, nil, &out, &errOut))
	var person struct {
		Name      string   `json:"name"`
		Age       *int     `json:"age"`
		Languages []string `json:"languages"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &person), out.String())
	require.NotEmpty(t, person.Name)
	require.NotNil(t, person.Age)
	require.Contains(t, errOut.String(), "✓ ok")
	require.Contains(t, errOut.String(), `{"`, "partial objects are shown on stderr")

	// --tools with a required tool choice shows the call as it streams and
	// prints it at the end.
	out.Reset()
	errOut.Reset()
	require.NoError(t, run(ctx, []string{"--tools", "../../examples/tools.json", "--tool-choice", "required", "Weather in Oslo?"}, nil, &out, &errOut))
	// Streamed on stdout as it comes, closed with ')', and not printed a
	// second time from the result.
	require.Regexp(t, `^tool call \S+ get_weather\(\{.*"city":.*\}\)\n$`, out.String())
	require.Equal(t, 1, strings.Count(out.String()+errOut.String(), "get_weather("), "the call is shown once:\n%s%s", out.String(), errOut.String())

	// A group no worker serves is refused at once, naming the served ones.
	err := run(ctx, []string{"-g", "nosuch", "hi"}, nil, &out, &errOut)
	require.ErrorContains(t, err, `no worker serves group "nosuch" (served: demo)`)

	// A bad schema file is refused before anything is sent.
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"type": 12}`), 0o600))
	err = run(ctx, []string{"--json", "--schema", bad, "x"}, nil, &out, &errOut)
	require.Error(t, err)
}
