package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func openAIInput(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"req %d/ü","method":"POST","url":"/v1/chat/completions","body":{"model":"demo","messages":[{"role":"user","content":"question %d"}],"max_tokens":50}}`+"\n", i, i)
	}
	return b.String()
}

// runBatch runs input through RunBatch and returns the output lines.
func runBatch(t *testing.T, ctx context.Context, c *bus.Client, id, input string, conc int, stopAfter int) (bus.BatchStats, []string, error) {
	t.Helper()
	r := &bus.BatchReader{}
	var (
		mu    sync.Mutex
		lines []string
	)
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	st, err := c.RunBatch(stopCtx, bus.BatchConfig{ID: id, Concurrency: conc}, r.Items(strings.NewReader(input)), func(o *bus.BatchOutcome) error {
		b, err := bus.MarshalBatchLine(r.Format, o)
		if err != nil {
			return err
		}
		mu.Lock()
		lines = append(lines, string(b))
		if stopAfter > 0 && len(lines) == stopAfter {
			stop() // the submitter is killed
		}
		mu.Unlock()
		return nil
	})
	return st, lines, err
}

type openAIOutLine struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int    `json:"status_code"`
		RequestID  string `json:"request_id"`
		Body       struct {
			Object  string `json:"object"`
			Choices []struct {
				Message struct {
					Role    string `json:"role"`
					Content string `json:"content"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeOpenAI(t *testing.T, lines []string) map[string]openAIOutLine {
	t.Helper()
	out := map[string]openAIOutLine{}
	for _, l := range lines {
		var o openAIOutLine
		require.NoError(t, json.Unmarshal([]byte(l), &o), l)
		_, dup := out[o.CustomID]
		require.False(t, dup, "custom_id %q written twice", o.CustomID)
		out[o.CustomID] = o
	}
	return out
}

func TestBatchThousandLinesOpenAI(t *testing.T) {
	t.Parallel()
	f := startFleet(t, fleetOpts{mock: mock.Config{Tokens: 5}})
	ctx := ctxT(t, 60*time.Second)
	st, lines, err := runBatch(t, ctx, f.client, "batch-thousand", openAIInput(1000), 64, 0)
	require.NoError(t, err)
	require.Equal(t, bus.BatchStats{Lines: 1000, OK: 1000}, st)
	out := decodeOpenAI(t, lines)
	require.Len(t, out, 1000)
	for i := range 1000 {
		o, ok := out[fmt.Sprintf("req %d/ü", i)]
		require.True(t, ok, "line %d missing", i)
		require.Nil(t, o.Error)
		require.Equal(t, 200, o.Response.StatusCode)
		require.Equal(t, "chat.completion", o.Response.Body.Object)
		require.Equal(t, "assistant", o.Response.Body.Choices[0].Message.Role)
		require.NotEmpty(t, o.Response.Body.Choices[0].Message.Content)
		require.Equal(t, 5, o.Response.Body.Usage.CompletionTokens)
		require.Equal(t, "batch_req_"+o.Response.RequestID, o.ID)
	}
	require.EqualValues(t, 1000, f.mock.Calls())
}

func TestBatchKilledHalfwayResumesWithoutRerunning(t *testing.T) {
	t.Parallel()
	// Slow enough that the kill finds jobs queued and running.
	f := startFleet(t, fleetOpts{mock: mock.Config{Tokens: 3, TTFT: 20 * time.Millisecond}, worker: func(c *workerConfig) { c.Concurrency = 8 }})
	ctx := ctxT(t, 60*time.Second)
	const n = 200
	input := openAIInput(n)
	_, first, err := runBatch(t, ctx, f.client, "batch-resume", input, 32, 60)
	require.ErrorIs(t, err, context.Canceled)
	require.GreaterOrEqual(t, len(first), 60)
	require.Less(t, len(first), n, "the kill must stop the batch before its end")

	st, lines, err := runBatch(t, ctx, f.client, "batch-resume", input, 32, 0)
	require.NoError(t, err)
	require.Equal(t, n, st.Lines)
	require.Equal(t, n, st.OK)
	require.GreaterOrEqual(t, st.Stored, 60, "finished lines are read back, not run")
	out := decodeOpenAI(t, lines)
	require.Len(t, out, n)
	for _, o := range out {
		require.Equal(t, 200, o.Response.StatusCode)
	}
	// Every line ran exactly once over both runs.
	require.EqualValues(t, n, f.mock.Calls())
}

func TestBatchAnthropicRoundTrip(t *testing.T) {
	t.Parallel()
	f := startFleet(t, fleetOpts{mock: mock.Config{Text: "alpha beta gamma"}})
	ctx := ctxT(t, 30*time.Second)
	input := `{"custom_id":"a-1","params":{"model":"claude-sonnet-4-5","max_tokens":64,"system":"be brief","messages":[{"role":"user","content":"hi"}]}}
{"custom_id":"a-2","params":{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":[{"type":"text","text":"hello"}]}]}}
{"custom_id":"a-3","params":{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}}
`
	r := &bus.BatchReader{Group: "demo"}
	var lines []string
	st, err := f.client.RunBatch(ctx, bus.BatchConfig{ID: "batch-anthropic"}, r.Items(strings.NewReader(input)), func(o *bus.BatchOutcome) error {
		b, err := bus.MarshalBatchLine(r.Format, o)
		lines = append(lines, string(b))
		return err
	})
	require.NoError(t, err)
	require.Equal(t, bus.BatchAnthropic, r.Format)
	require.Equal(t, bus.BatchStats{Lines: 3, OK: 2, Failed: 1, Invalid: 1}, st)
	type resultLine struct {
		CustomID string `json:"custom_id"`
		Result   struct {
			Type    string `json:"type"`
			Message struct {
				Type       string `json:"type"`
				Role       string `json:"role"`
				StopReason string `json:"stop_reason"`
				Content    []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"content"`
				Usage struct {
					OutputTokens int `json:"output_tokens"`
				} `json:"usage"`
			} `json:"message"`
			Error struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			} `json:"error"`
		} `json:"result"`
	}
	got := map[string]resultLine{}
	for _, l := range lines {
		var rl resultLine
		require.NoError(t, json.Unmarshal([]byte(l), &rl))
		got[rl.CustomID] = rl
	}
	for _, id := range []string{"a-1", "a-2"} {
		rl := got[id]
		require.Equal(t, "succeeded", rl.Result.Type, id)
		require.Equal(t, "message", rl.Result.Message.Type)
		require.Equal(t, "assistant", rl.Result.Message.Role)
		require.Equal(t, "end_turn", rl.Result.Message.StopReason)
		require.Equal(t, "alpha beta gamma", rl.Result.Message.Content[0].Text)
		require.Equal(t, 3, rl.Result.Message.Usage.OutputTokens)
	}
	bad := got["a-3"]
	require.Equal(t, "errored", bad.Result.Type)
	require.Equal(t, "invalid_request_error", bad.Result.Error.Error.Type)
	require.Contains(t, bad.Result.Error.Error.Message, "line 3")
	// The system prompt reached the provider as a system message.
	var sawSystem bool
	for _, req := range f.mock.Requests() {
		if len(req.Messages) == 2 && string(req.Messages[0].Role) == "system" {
			sawSystem = true
		}
	}
	require.True(t, sawSystem)
}

func TestBatchInvalidLinesAreReportedNotFatal(t *testing.T) {
	t.Parallel()
	f := startFleet(t, fleetOpts{})
	ctx := ctxT(t, 30*time.Second)
	input := strings.Join([]string{
		`{"custom_id":"ok-1","method":"POST","url":"/v1/chat/completions","body":{"model":"demo","messages":[{"role":"user","content":"hi"}]}}`,
		`{"custom_id":"broken", "body": {`,
		``,
		`{"method":"POST","url":"/v1/chat/completions","body":{"model":"demo","messages":[{"role":"user","content":"hi"}]}}`,
		`{"custom_id":"bad-model","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o.mini","messages":[{"role":"user","content":"hi"}]}}`,
		`{"custom_id":"bad-url","method":"POST","url":"/v1/embeddings","body":{"model":"demo","input":"x"}}`,
		`{"custom_id":"ok-1","method":"POST","url":"/v1/chat/completions","body":{"model":"demo","messages":[{"role":"user","content":"again"}]}}`,
		`{"custom_id":"no-group","method":"POST","url":"/v1/chat/completions","body":{"model":"nobody","messages":[{"role":"user","content":"hi"}]}}`,
		`{"custom_id":"ok-2","method":"POST","url":"/v1/chat/completions","body":{"model":"demo","messages":[{"role":"user","content":"hi"}]}}`,
	}, "\n")
	st, lines, err := runBatch(t, ctx, f.client, "batch-invalid", input, 4, 0)
	require.NoError(t, err)
	require.Equal(t, 8, st.Lines, "the empty line is skipped")
	require.Equal(t, 2, st.OK)
	require.Equal(t, 6, st.Failed)
	require.Equal(t, 5, st.Invalid)
	require.Len(t, lines, 8)
	byLine := map[string]string{}
	for _, l := range lines {
		var o openAIOutLine
		require.NoError(t, json.Unmarshal([]byte(l), &o))
		switch {
		case o.Error != nil:
			byLine[o.Error.Message[:strings.Index(o.Error.Message, ":")]] = o.Error.Code
		case o.CustomID == "no-group":
			require.Equal(t, 404, o.Response.StatusCode)
			// OpenAI's own answer to an unknown model.
			require.Equal(t, "model_not_found", o.Response.Body.Error.Code)
		default:
			require.Equal(t, 200, o.Response.StatusCode, l)
		}
	}
	for _, n := range []string{"line 2", "line 4", "line 5", "line 6", "line 7"} {
		require.Contains(t, byLine, n)
	}
}

func TestBatchReaderDetectsFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
		want bus.BatchFormat
	}{
		{"openai", `{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{}}`, bus.BatchOpenAI},
		{"anthropic", `{"custom_id":"x","params":{"model":"m","messages":[]}}`, bus.BatchAnthropic},
		{"garbage", `not json`, bus.BatchOpenAI},
		{"params not an object", `{"custom_id":"x","params":"y"}`, bus.BatchOpenAI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, bus.DetectBatchFormat([]byte(tt.line)))
		})
	}
}

func TestBatchJobIDsAreValidAndStable(t *testing.T) {
	t.Parallel()
	id := bus.BatchIDFor("/tmp/in.jsonl", []byte("content"))
	require.True(t, bus.ValidBatchID(id), id)
	require.Equal(t, id, bus.BatchIDFor("/tmp/in.jsonl", []byte("content")))
	require.NotEqual(t, id, bus.BatchIDFor("/tmp/in.jsonl", []byte("content2")))
	seen := map[string]bool{}
	for _, cid := range []string{"", "a", "A", "a b", "ü/ö.*>", strings.Repeat("x", 10000)} {
		j := bus.BatchJobID(strings.Repeat("b", 80), "demo", cid)
		require.True(t, bus.ValidJobID(j), j)
		require.Equal(t, j, bus.BatchJobID(strings.Repeat("b", 80), "demo", cid))
		require.False(t, seen[j])
		seen[j] = true
	}
}

func TestBatchJobIDDependsOnTheGroup(t *testing.T) {
	t.Parallel()
	require.NotEqual(t, bus.BatchJobID("b", "demo", "x"), bus.BatchJobID("b", "other", "x"))
	require.NotEqual(t, bus.BatchJobID("b", "ab", "c"), bus.BatchJobID("b", "a", "bc"), "group and custom_id are not just concatenated")
}

func TestSettledResults(t *testing.T) {
	t.Parallel()
	errResult := func(c bus.ErrorCode) *bus.Result {
		return &bus.Result{Status: bus.StatusError, Error: &bus.Error{Code: c}}
	}
	require.True(t, bus.Settled(&bus.Result{Status: bus.StatusOK}))
	for _, c := range []bus.ErrorCode{bus.CodeInvalidRequest, bus.CodeTooLarge, bus.CodeContextWindowExceeded, bus.CodeContentPolicy} {
		require.True(t, bus.Settled(errResult(c)), c)
	}
	for _, c := range []bus.ErrorCode{bus.CodeUnknownGroup, bus.CodeRateLimited, bus.CodeProviderUnavailable, bus.CodeTimeout,
		bus.CodeDeadlineExceeded, bus.CodeValidationFailed, bus.CodeAuth, bus.CodeBudgetExceeded, bus.CodeCancelled, bus.CodeInternal} {
		require.False(t, bus.Settled(errResult(c)), c)
	}
	require.False(t, bus.Settled(&bus.Result{Status: bus.StatusError}), "an error without a code")
}

func TestBatchReaderParsesAnthropicImages(t *testing.T) {
	t.Parallel()
	r := &bus.BatchReader{Format: bus.BatchAnthropic, Group: "demo"}
	it := r.Parse(1, []byte(`{"custom_id":"i","params":{"model":"m","system":[{"type":"text","text":"sys"}],"stop_sequences":["END"],"messages":[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}}`))
	require.NoError(t, it.Err)
	require.Equal(t, "demo", it.Group)
	require.Equal(t, bus.Strings{"END"}, it.Request.Stop)
	require.Equal(t, "system", it.Request.Messages[0].Role)
	require.Equal(t, "sys", it.Request.Messages[0].Content.Text)
	parts := it.Request.Messages[1].Content.Parts
	require.Len(t, parts, 2)
	require.Equal(t, "data:image/png;base64,AAAA", parts[1].ImageURL.URL)
}

func TestBatchReaderResolvesAliases(t *testing.T) {
	t.Parallel()
	r := &bus.BatchReader{Resolve: func(model string) (string, bool) {
		g, ok := map[string]string{"gpt-4.1-mini": "demo"}[model]
		return g, ok
	}}
	in := `{"custom_id":"a","body":{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"hi"}]}}
{"custom_id":"b","body":{"model":"demo","messages":[{"role":"user","content":"hi"}]}}`
	var items []bus.BatchItem
	for it := range r.Items(strings.NewReader(in)) {
		items = append(items, it)
	}
	require.Len(t, items, 2)
	require.NoError(t, items[0].Err)
	require.Equal(t, "demo", items[0].Group)
	// With a resolver, only what it knows is a model, group names included.
	require.ErrorContains(t, items[1].Err, `model "demo" does not exist`)
}

func TestAnthropicRequestToolsAndResults(t *testing.T) {
	t.Parallel()
	var p bus.AnthropicRequest
	require.NoError(t, json.Unmarshal([]byte(`{"model":"m","max_tokens":10,"system":[{"type":"text","text":"be brief"}],
	"tools":[{"name":"get_weather","description":"d","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"get_weather"},
	"messages":[{"role":"user","content":"weather?"},
	{"role":"assistant","content":[{"type":"text","text":"let me look"},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Oslo"}}]},
	{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"cold"}]},{"type":"text","text":"thanks"}]}]}`), &p))
	req, err := p.Job()
	require.NoError(t, err)
	require.Equal(t, []bus.Message{
		{Role: "system", Content: bus.Text("be brief")},
		{Role: "user", Content: bus.Text("weather?")},
		{Role: "assistant", Content: bus.Text("let me look"), ToolCalls: []bus.ToolCall{{ID: "toolu_1", Type: "function", Function: bus.FunctionCall{Name: "get_weather", Arguments: `{"city":"Oslo"}`}}}},
		{Role: "tool", ToolCallID: "toolu_1", Content: bus.Text("cold")},
		{Role: "user", Content: bus.Text("thanks")},
	}, req.Messages)
	require.Equal(t, &bus.ToolChoice{Mode: "function", Function: "get_weather"}, req.ToolChoice)
	require.Equal(t, "get_weather", req.Tools[0].Function.Name)

	require.NoError(t, json.Unmarshal([]byte(`{"top_k":5}`), &p))
	require.Equal(t, "top_k", p.Unsupported())
}

func TestVendorErrorsAnUpstreamKeyIsNeverTheCallers401(t *testing.T) {
	t.Parallel()
	st, body := bus.OpenAIErrorOf(&bus.Error{Code: bus.CodeAuth, Message: "upstream said 401"})
	require.Equal(t, 502, st)
	require.Equal(t, "upstream_auth_failed", *body.Error.Code)
	ast, abody := bus.AnthropicErrorOf(&bus.Error{Code: bus.CodeBudgetExceeded})
	require.Equal(t, 402, ast)
	require.Equal(t, "billing_error", abody.Error.Type)
	require.Equal(t, 500, bus.VendorErrorOf("no such code").Status)
}
