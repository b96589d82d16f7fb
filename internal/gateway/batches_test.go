package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"
)

// batchLine is a line of OpenAI's batch output and error files.
type batchLine struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int                   `json:"status_code"`
		RequestID  string                `json:"request_id"`
		Body       openai.ChatCompletion `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func batchInput(n int, bad ...int) []byte {
	var b bytes.Buffer
	isBad := map[int]bool{}
	for _, i := range bad {
		isBad[i] = true
	}
	for i := range n {
		model := "gpt-4o-mini"
		if isBad[i] {
			model = "no-such-model"
		}
		fmt.Fprintf(&b, `{"custom_id":"request-%d","method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":"question %d"}],"max_tokens":50}}`+"\n", i, model, i)
	}
	return b.Bytes()
}

func readLines(t *testing.T, r io.Reader) []batchLine {
	t.Helper()
	var out []batchLine
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l batchLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), sc.Text())
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestOpenAIBatchFlowThousandLines(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 120*time.Second)
	c := f.openai()

	file, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader(batchInput(1000, 7, 500)), "input.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	require.NoError(t, err)
	require.EqualValues(t, "batch", file.Purpose)
	require.Equal(t, "input.jsonl", file.Filename)

	b, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: file.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	require.NoError(t, err)
	require.EqualValues(t, "validating", b.Status)
	for b.Status != "completed" {
		require.NotContains(t, []string{"failed", "cancelled", "expired"}, string(b.Status))
		select {
		case <-ctx.Done():
			t.Fatalf("batch still %s: %+v", b.Status, b.RequestCounts)
		case <-time.After(100 * time.Millisecond):
		}
		b, err = c.Batches.Get(ctx, b.ID)
		require.NoError(t, err)
	}
	require.EqualValues(t, 1000, b.RequestCounts.Total)
	if b.RequestCounts.Completed != 998 {
		resp, err := c.Files.Content(ctx, b.ErrorFileID)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		t.Logf("error file: %s", body)
	}
	require.EqualValues(t, 998, b.RequestCounts.Completed, "%s", b.RawJSON())
	require.EqualValues(t, 2, b.RequestCounts.Failed)
	require.NotZero(t, b.CompletedAt)

	resp, err := c.Files.Content(ctx, b.OutputFileID)
	require.NoError(t, err)
	defer resp.Body.Close()
	out := readLines(t, resp.Body)
	require.Len(t, out, 998)
	seen := map[string]bool{}
	for _, l := range out {
		require.False(t, seen[l.CustomID], "custom_id %s twice", l.CustomID)
		seen[l.CustomID] = true
		require.Nil(t, l.Error)
		require.Equal(t, 200, l.Response.StatusCode)
		require.Equal(t, "batch_req_"+l.Response.RequestID, l.ID)
		require.EqualValues(t, "chat.completion", l.Response.Body.Object)
		require.NotEmpty(t, l.Response.Body.Choices[0].Message.Content)
	}
	resp, err = c.Files.Content(ctx, b.ErrorFileID)
	require.NoError(t, err)
	defer resp.Body.Close()
	bad := readLines(t, resp.Body)
	require.Len(t, bad, 2)
	for _, l := range bad {
		require.Contains(t, []string{"request-7", "request-500"}, l.CustomID)
		require.NotNil(t, l.Error)
		require.Contains(t, l.Error.Message, "no-such-model")
	}
	require.EqualValues(t, 998, f.mocks["demo"].Calls())

	got, err := c.Batches.Get(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, b.OutputFileID, got.OutputFileID)
	list, err := c.Batches.List(ctx, openai.BatchListParams{})
	require.NoError(t, err)
	require.Len(t, list.Data, 1)
}

func TestBatchCancel(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{slow: mockSlow(50, 20*time.Millisecond), gateway: func(c *gatewayConfig) { c.BatchConcurrency = 2 }})
	ctx := ctxT(t, 60*time.Second)
	c := f.openai()
	in := strings.ReplaceAll(string(batchInput(50)), `"gpt-4o-mini"`, `"slow"`)
	file, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(in), "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	require.NoError(t, err)
	b, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: file.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	require.NoError(t, err)
	eventually(t, 20*time.Second, func() bool {
		b, err = c.Batches.Get(ctx, b.ID)
		return err == nil && b.Status == "in_progress"
	}, "batch runs")
	b, err = c.Batches.Cancel(ctx, b.ID)
	require.NoError(t, err)
	require.EqualValues(t, "cancelling", b.Status)
	eventually(t, 20*time.Second, func() bool {
		b, err = c.Batches.Get(ctx, b.ID)
		return err == nil && b.Status == "cancelled"
	}, "batch cancelled")
	require.Less(t, b.RequestCounts.Completed+b.RequestCounts.Failed, int64(50))
	require.Less(t, f.mocks["slow"].CallsOK(), int64(50), "the rest never ran to the end")
	// Only the lines that may have been published get a cancel: one
	// cancel round trip for every line of a large batch kept a cancelled
	// batch cancelling for longer than the test waited, under load.
	kv, err := f.js.KeyValue(ctx, f.client.Subjects().CancelBucket())
	require.NoError(t, err)
	keys, err := kv.ListKeys(ctx)
	require.NoError(t, err)
	n := 0
	for range keys.Keys() {
		n++
	}
	require.Positive(t, n, "the lines in flight were cancelled")
	require.LessOrEqual(t, n, 3, "at most the 2 lines in flight and the one waiting for a slot")
}

func TestFilesAPI(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 20*time.Second)
	c := f.openai()
	_, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader("x"), "a.txt", "text/plain"), Purpose: openai.FilePurposeFineTune})
	require.Equal(t, 400, apiError(t, err).StatusCode)
	file, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader(batchInput(3)), "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	require.NoError(t, err)
	got, err := c.Files.Get(ctx, file.ID)
	require.NoError(t, err)
	require.Equal(t, file.Bytes, got.Bytes)
	resp, err := c.Files.Content(ctx, file.ID)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, batchInput(3), body)
	list, err := c.Files.List(ctx, openai.FileListParams{})
	require.NoError(t, err)
	require.Len(t, list.Data, 1)
	del, err := c.Files.Delete(ctx, file.ID)
	require.NoError(t, err)
	require.True(t, del.Deleted)
	_, err = c.Files.Get(ctx, file.ID)
	require.Equal(t, 404, apiError(t, err).StatusCode)
}

// A batch whose gateway stops mid-run is taken over by another gateway,
// which runs the rest without running the finished lines again.
func TestBatchAdoptedByAnotherGateway(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{slow: mockSlow(5, 10*time.Millisecond), gateway: func(c *gatewayConfig) { c.BatchConcurrency = 4 }})
	ctx := ctxT(t, 90*time.Second)
	c := f.openai()
	in := strings.ReplaceAll(string(batchInput(60)), `"gpt-4o-mini"`, `"slow"`)
	file, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(in), "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	require.NoError(t, err)
	b, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: file.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	require.NoError(t, err)
	eventually(t, 30*time.Second, func() bool { return f.mocks["slow"].CallsOK() >= 10 }, "the batch runs")
	f.gw.stop()
	ranBefore := f.mocks["slow"].CallsOK()
	require.Less(t, ranBefore, int64(60), "stopped mid-run")

	f.gw = f.startGateway()
	c = f.openai()
	eventually(t, 60*time.Second, func() bool {
		b, err = c.Batches.Get(ctx, b.ID)
		return err == nil && b.Status == "completed"
	}, "the second gateway finishes the batch")
	require.EqualValues(t, 60, b.RequestCounts.Completed)
	resp, err := c.Files.Content(ctx, b.OutputFileID)
	require.NoError(t, err)
	defer resp.Body.Close()
	out := readLines(t, resp.Body)
	require.Len(t, out, 60, "every line once")
	// Lines that had finished were read back, not run again; only the
	// lines in flight at the stop (at most BatchConcurrency) may have run
	// twice.
	require.LessOrEqual(t, f.mocks["slow"].CallsOK(), int64(60+4))
}

// A batch still running when its completion window ends is expired: the
// lines that ended are in the output file, the others in the error file
// with batch_expired, as OpenAI writes them.
func TestBatchExpires(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64 // how far the gateway's clock is ahead of the real one
	f := newFleet(t, fleetOpts{slow: mockSlow(20, 20*time.Millisecond), gateway: func(c *gatewayConfig) {
		c.BatchConcurrency = 2
		c.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	}})
	ctx := ctxT(t, 60*time.Second)
	c := f.openai()
	in := strings.ReplaceAll(string(batchInput(40)), `"gpt-4o-mini"`, `"slow"`)
	file, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(in), "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	require.NoError(t, err)
	b, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: file.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	require.NoError(t, err)
	eventually(t, 30*time.Second, func() bool { return f.mocks["slow"].CallsOK() >= 2 }, "the batch runs")
	ahead.Store(int64(25 * time.Hour))
	eventually(t, 30*time.Second, func() bool {
		b, err = c.Batches.Get(ctx, b.ID)
		return err == nil && b.Status == "expired"
	}, "batch expired")
	require.NotZero(t, b.ExpiredAt)
	require.EqualValues(t, 40, b.RequestCounts.Total)
	require.EqualValues(t, 40, b.RequestCounts.Completed+b.RequestCounts.Failed)
	require.Positive(t, b.RequestCounts.Completed)
	require.Less(t, b.RequestCounts.Completed, int64(40))

	resp, err := c.Files.Content(ctx, b.OutputFileID)
	require.NoError(t, err)
	ok := readLines(t, resp.Body)
	resp.Body.Close()
	require.Len(t, ok, int(b.RequestCounts.Completed))
	resp, err = c.Files.Content(ctx, b.ErrorFileID)
	require.NoError(t, err)
	bad := readLines(t, resp.Body)
	resp.Body.Close()
	require.Len(t, bad, int(b.RequestCounts.Failed))
	seen := map[string]bool{}
	for _, l := range append(ok, bad...) {
		require.False(t, seen[l.CustomID], l.CustomID)
		seen[l.CustomID] = true
	}
	require.Len(t, seen, 40, "every line once, in one file or the other")
	expired := 0
	for _, l := range bad {
		if l.Error != nil && l.Error.Code == "batch_expired" {
			expired++
		}
	}
	require.Positive(t, expired)
}
