package openai_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/openai"
)

func ExampleClient_Stream() {
	// A stand-in for a local vLLM server.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: "+chunk(`{"content":"Hi!"}`, "stop")+"\n\n"+"data: "+usageChunk+"\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()

	c, err := openai.New(openai.Options{Preset: "vllm", BaseURL: srv.URL + "/v1", HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		panic(err)
	}
	s, err := c.Stream(context.Background(), &llm.Request{
		Model:    "Qwen/Qwen2.5-7B-Instruct",
		Messages: []llm.Message{{Role: llm.RoleUser, Content: "Say hi"}},
	})
	if err != nil {
		fmt.Println("failed before the first token:", llm.KindOf(err))
		return
	}
	defer s.Close()
	for s.Next() {
		ch := s.Current()
		if ch.Delta != "" {
			fmt.Println("delta:", ch.Delta)
		}
		if ch.FinishReason != "" {
			fmt.Println("finish:", ch.FinishReason, "tokens:", ch.Usage.TotalTokens)
		}
	}
	if err := s.Err(); err != nil {
		fmt.Println("failed:", err)
	}
	// Output:
	// delta: Hi!
	// finish: stop tokens: 15
}
