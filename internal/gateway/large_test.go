package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

// manyItems is a schema whose answer (~10,000 strings, in the result's text
// and json both) is several times the test server's max payload.
const manyItems = `{"type":"object","properties":{"items":{"type":"array","minItems":10000,"items":{"type":"string","minLength":12}}},"required":["items"]}`

func requireManyItems(t *testing.T, content, where string) {
	t.Helper()
	var v struct {
		Items []string `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(content), &v), "%s: %.200s", where, content)
	require.Len(t, v.Items, 10000, where)
}

// requireObjectResult checks that a job's result was too large for one
// message: the stored result message is a summary naming its object.
func requireObjectResult(t *testing.T, f *fleet, jobID string) {
	t.Helper()
	s, err := f.js.Stream(t.Context(), bus.StreamResults)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(t.Context(), bus.ResultSubject(f.client.Subjects().Reply(jobID)))
	require.NoError(t, err)
	require.NotEmpty(t, m.Header.Get(bus.HeaderObject), "job %s: the result should have gone to the Object Store", jobID)
}

// A result too large for one NATS message reaches the client whole on every
// path: a whole and a streamed chat completion, an async job (GET and its
// webhook) and a batch's output file.
func TestLargeResultsOnEveryPath(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{maxPayload: 256 << 10})
	ctx := ctxT(t, 120*time.Second)
	body := func(stream bool) string {
		return fmt.Sprintf(`{"model":"json","stream":%v,"messages":[{"role":"user","content":"many things"}],"response_format":{"type":"json_schema","json_schema":{"name":"big","schema":%s}}}`, stream, manyItems)
	}

	// Whole.
	st, h, v := post(t, f.gw.URL+"/v1/chat/completions", body(false), "Idempotency-Key", "big-whole")
	require.Equal(t, http.StatusOK, st, v)
	requireObjectResult(t, f, h.Get("X-Request-Id"))
	var cc openai.ChatCompletion
	b, _ := json.Marshal(v)
	require.NoError(t, json.Unmarshal(b, &cc))
	requireManyItems(t, cc.Choices[0].Message.Content, "whole")

	// Streamed, read by the official SDK (go-sse's reader, which the other
	// tests use, stops at 64 KiB events).
	var schema map[string]any
	require.NoError(t, json.Unmarshal([]byte(manyItems), &schema))
	oc := f.openai()
	stream := oc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: "json", Messages: userMsg("many things"),
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "big", Schema: schema},
		}},
	}, option.WithHeader("Idempotency-Key", "big-stream"))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	require.NoError(t, stream.Err())
	require.NoError(t, stream.Close())
	requireObjectResult(t, f, "big-stream")
	requireManyItems(t, acc.Choices[0].Message.Content, "stream")

	// An async job, read back and delivered by webhook.
	recv := newReceiver(t, 0)
	var req map[string]any
	require.NoError(t, json.Unmarshal([]byte(body(false)), &req))
	req["webhook"] = recv.URL + "/hook"
	jb, _ := json.Marshal(req)
	j := createJob(t, f, string(jb))
	done := waitJob(t, f, j.ID, func(v jobView) bool { return v.Status != "queued" && v.Status != "in_progress" })
	require.Equal(t, "succeeded", done.Status)
	requireObjectResult(t, f, j.ID)
	requireManyItems(t, done.Response.Choices[0].Message.Content, "GET /v1/jobs/{id}")
	eventually(t, 30*time.Second, func() bool { return len(recv.deliveries()) == 1 }, "webhook delivered")
	var ev struct {
		Data jobView `json:"data"`
	}
	require.NoError(t, json.Unmarshal(recv.deliveries()[0].body, &ev))
	require.Equal(t, "succeeded", ev.Data.Status)
	requireManyItems(t, ev.Data.Response.Choices[0].Message.Content, "webhook")

	// A batch's output file.
	c := f.openai()
	line := fmt.Sprintf(`{"custom_id":"big","method":"POST","url":"/v1/chat/completions","body":%s}`+"\n", body(false))
	file, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader([]byte(line)), "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	require.NoError(t, err)
	bt, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: file.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	require.NoError(t, err)
	eventually(t, 60*time.Second, func() bool {
		bt, err = c.Batches.Get(ctx, bt.ID)
		return err == nil && bt.Status == "completed"
	}, "batch completes")
	require.EqualValues(t, 1, bt.RequestCounts.Completed, "%s", bt.RawJSON())
	out, err := c.Files.Content(ctx, bt.OutputFileID)
	require.NoError(t, err)
	lines := readLines(t, out.Body)
	out.Body.Close()
	require.Len(t, lines, 1)
	requireObjectResult(t, f, lines[0].Response.RequestID)
	requireManyItems(t, lines[0].Response.Body.Choices[0].Message.Content, "batch output")
}
