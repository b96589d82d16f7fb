package openai_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm/openai"
)

// benchChunks is the number of content chunks per streamed answer, as in
// section (c) of `make bench`.
const benchChunks = 20

// benchBody is one whole answer in OpenAI's wire format: a role chunk,
// benchChunks content chunks, a finish chunk, a usage chunk and [DONE].
func benchBody() []byte {
	const head = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_bench","choices":[`
	var b strings.Builder
	b.WriteString(head + `{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	for k := range benchChunks {
		b.WriteString(head + `{"index":0,"delta":{"content":"word` + strconv.Itoa(k) + ` "},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	}
	b.WriteString(head + `{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}` + "\n\n")
	b.WriteString(head + `],"usage":{"prompt_tokens":128,"completion_tokens":20,"total_tokens":148}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return []byte(b.String())
}

// BenchmarkStream measures the client's cost for one streamed answer of
// benchChunks chunks from a local server (request building, sending, SSE
// decoding, chunk mapping); ns/chunk is that cost spread over the chunks.
// The server's share is in the figures too, and is the same before and
// after any change to this package.
func BenchmarkStream(b *testing.B) {
	body := benchBody()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}))
	tr := &http.Transport{}
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	c, err := openai.New(openai.Options{
		BaseURL:    srv.URL + "/v1",
		APIKey:     testKey,
		HTTPClient: &http.Client{Transport: tr},
	})
	require.NoError(b, err)
	req := userReq(strings.Repeat("x", 512))
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.Stream(b.Context(), req)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for s.Next() {
			n++
		}
		if err := s.Err(); err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
		if n != benchChunks+1 {
			b.Fatalf("got %d chunks, want %d", n, benchChunks+1)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(benchChunks+3)), "ns/chunk")
}
