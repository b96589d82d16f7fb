package docs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/apptest"
	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/pkg/bus"
)

// A model file whose deployment fails in every way a job can see before it
// is healthy: a call refused (retry), a stream cut after two chunks
// (restart), an auth error (fallback to the spare group).
const wireModels = `
groups:
  demo:
    retry: {max_retries: 3, backoff: {initial: 1ms, max: 2ms}}
    fallbacks: [spare]
    deployments:
      - name: primary
        provider: mock
        model: mock-1
        mock: {tokens: 6, tool_calls: true, script: [{error: unavailable}, {fail_after: 2}, {error: auth}]}
  spare:
    deployments:
      - name: backup
        provider: mock
        model: mock-1
        mock: {tokens: 6, tool_calls: true}
`

// startWireWorker runs a whole worker (embedded NATS, the model file above,
// durable events) and returns its NATS URL.
func startWireWorker(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	models := filepath.Join(dir, "models.yaml")
	require.NoError(t, os.WriteFile(models, []byte(wireModels), 0o600))
	t.Setenv("SWITCHYARD_CONFIG", models)
	t.Setenv("SWITCHYARD_DATA_DIR", dir)
	t.Setenv("SWITCHYARD_EMBEDDED_ADDR", "127.0.0.1:-1")
	t.Setenv("SWITCHYARD_METRICS_ADDR", "off")
	t.Setenv("SWITCHYARD_DURABLE_EVENTS", "true")
	env, err := config.LoadEnv()
	require.NoError(t, err)
	return apptest.Start(t, env, app.Options{})
}

// rawMsg is a message as a subscriber to llm.> saw it.
type rawMsg struct {
	subject string
	header  nats.Header
	data    []byte
}

// TestSchemasValidateARealRun publishes jobs the way a client in another
// language does (JSON bodies, raw subscriptions), plus msgpack ones from the
// Go client, and validates every request, event and result that crossed the
// wire against docs/schema. It also checks that the run showed every event
// type and both result statuses, so that the schemas were tried on each.
func TestSchemasValidateARealRun(t *testing.T) {
	url := startWireWorker(t)
	s := schemas(t)
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()

	var mu sync.Mutex
	var msgs []rawMsg
	sub, err := nc.Subscribe("llm.>", func(m *nats.Msg) {
		mu.Lock()
		msgs = append(msgs, rawMsg{m.Subject, m.Header, m.Data})
		mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, sub.SetPendingLimits(-1, -1))
	require.NoError(t, nc.Flush())

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	schema := `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}`
	tools := `[{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`
	jobs := map[string]string{
		// The first job meets the primary's script: retry, restart, fallback.
		"wire-plain":    `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello"}],"metadata":{"ticket":"42"},"temperature":0.2,"max_tokens":50,"stop":"\n\n","seed":7}`,
		"wire-schema":   `{"messages":[{"role":"user","content":"Invent a person"}],"response_format":{"type":"json_schema","json_schema":{"name":"person","schema":` + schema + `,"strict":true}}}`,
		"wire-tools":    `{"messages":[{"role":"user","content":"Weather in Oslo?"}],"tools":` + tools + `,"tool_choice":"required"}`,
		"wire-parts":    `{"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]}],"stream":false}`,
		"wire-invalid":  `{"messages":"not a list"}`,
		"wire-deadline": `{"messages":[{"role":"user","content":"late"}],"deadline":"2001-01-01T00:00:00Z"}`,
	}
	order := []string{"wire-plain", "wire-schema", "wire-tools", "wire-parts", "wire-invalid", "wire-deadline"}
	for _, id := range order {
		res := publishRaw(ctx, t, nc, id, jobs[id])
		switch id {
		case "wire-invalid":
			require.Equal(t, "invalid_request", res.Error.Code, id)
		case "wire-deadline":
			require.Equal(t, "deadline_exceeded", res.Error.Code, id)
		default:
			require.Equal(t, bus.StatusOK, res.Status, "%s: %+v", id, res.Error)
		}
	}
	// A tool loop's second turn (assistant tool_calls, a tool message) and
	// a msgpack job, as the Go client sends them.
	cm, err := bus.NewClient(nc)
	require.NoError(t, err)
	res, err := cm.Submit(ctx, "demo", &bus.Request{ID: "wire-msgpack", Messages: []bus.Message{
		{Role: "user", Content: bus.Text("Weather in Oslo?")},
		{Role: "assistant", ToolCalls: []bus.ToolCall{{ID: "call_1", Type: "function", Function: bus.FunctionCall{Name: "get_weather", Arguments: `{"city":"Oslo"}`}}}},
		{Role: "tool", ToolCallID: "call_1", Content: bus.Text(`{"celsius":4}`)},
	}, Tools: []bus.Tool{{Type: "function", Function: bus.FunctionSpec{Name: "get_weather", Parameters: map[string]any{"type": "object"}}}},
		ToolChoice: &bus.ToolChoice{Mode: "function", Function: "get_weather"}})
	require.NoError(t, err)
	require.Equal(t, bus.StatusOK, res.Status)

	// Everything seen on the wire, validated.
	require.NoError(t, nc.Flush())
	mu.Lock()
	defer mu.Unlock()
	seenTypes, seenStatus, seenFields := map[string]int{}, map[string]int{}, map[string]int{}
	kinds := map[string]int{}
	for _, m := range msgs {
		var kind string
		switch {
		case strings.HasPrefix(m.subject, "llm.req."):
			kind = "request"
		case strings.HasSuffix(m.subject, ".events"):
			kind = "event"
		case strings.HasSuffix(m.subject, ".result"):
			kind = "result"
		default:
			continue // cancel markers and the like
		}
		kinds[kind]++
		doc := decodeAny(t, m)
		if kind == "request" && m.header.Get("Nats-Msg-Id") == "wire-invalid" {
			// What the worker refuses, the schema refuses.
			require.Error(t, s[kind].Validate(doc), "%s", m.data)
			continue
		}
		require.NoError(t, s[kind].Validate(doc), "%s on %s:\n%s", kind, m.subject, m.data)
		obj := doc.(map[string]any)
		switch kind {
		case "event":
			seenTypes[obj["type"].(string)]++
		case "result":
			seenStatus[obj["status"].(string)]++
			for k := range obj {
				seenFields[k]++
			}
		}
	}
	t.Logf("validated %v; event types %v; result statuses %v", kinds, seenTypes, seenStatus)
	for _, typ := range []string{"start", "chunk", "partial", "restart", "retry", "fallback", "tool_call"} {
		require.NotZero(t, seenTypes[typ], "the run showed no %s event", typ)
	}
	require.NotZero(t, seenStatus["ok"])
	require.NotZero(t, seenStatus["error"])
	for _, f := range []string{"json", "tool_calls", "usage", "attempts", "metadata", "error", "finish_reason"} {
		require.NotZero(t, seenFields[f], "no result had %s", f)
	}
	require.GreaterOrEqual(t, kinds["request"], len(order)+1)
}

// publishRaw publishes body as a JSON job the way the nats CLI or any
// client does, subscribed first to its reply subjects, and returns its
// result, decoded loosely.
func publishRaw(ctx context.Context, t *testing.T, nc *nats.Conn, id, body string) *looseResult {
	t.Helper()
	sub, err := nc.SubscribeSync("llm.res." + id + ".result")
	require.NoError(t, err)
	defer sub.Unsubscribe() //nolint:errcheck // test cleanup
	m := nats.NewMsg("llm.req.demo")
	m.Header.Set("Nats-Msg-Id", id)
	m.Data = []byte(body)
	_, err = nc.RequestMsgWithContext(ctx, m) // the JetStream PubAck
	require.NoError(t, err)
	rm, err := sub.NextMsgWithContext(ctx)
	require.NoError(t, err, id)
	var r looseResult
	require.NoError(t, json.Unmarshal(rm.Data, &r), "%s: a JSON job gets a JSON result: %q", id, rm.Data)
	return &r
}

type looseResult struct {
	Status bus.Status `json:"status"`
	Error  *struct {
		Code string `json:"code"`
	} `json:"error"`
}

// decodeAny decodes a message body in its encoding into the plain values a
// JSON Schema validator takes.
func decodeAny(t *testing.T, m rawMsg) any {
	t.Helper()
	data := m.data
	if bus.Detect(m.header, m.data) == bus.Msgpack {
		var v any
		require.NoError(t, msgpack.Unmarshal(m.data, &v), m.subject)
		b, err := json.Marshal(v)
		require.NoError(t, err, "%s: %v", m.subject, v)
		data = b
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(string(data)))
	require.NoError(t, err, fmt.Sprintf("%s: %q", m.subject, data))
	return v
}
