// Package openai is the llm.Provider for OpenAI's chat completions API, built
// on the official SDK github.com/openai/openai-go/v3. It also serves Azure
// OpenAI and every OpenAI-compatible server (Groq, DeepSeek, Together,
// Mistral, OpenRouter, Fireworks, vLLM, Ollama, LM Studio) through presets:
// those vendors are configurations of this package, not copies of it.
//
// The SDK's own retries are switched off (option.WithMaxRetries(0)): the
// policy layer owns retries. The client never reads OPENAI_* environment
// variables; everything comes from Options.
//
// Stream waits for the first chunk of output before it returns, so that a
// failure before the first token (HTTP 429, 5xx, a refused connection, a
// refusal) is an ordinary error from Stream and not a stream that fails on its
// first Next. Failures are classified into *llm.Error (see errors.go); the API
// key never appears in an error.
//
// The last chunk of a clean stream carries the FinishReason and the Usage
// (stream_options.include_usage is sent unless Options.NoStreamUsage). A
// stream that ends before a finish_reason (connection cut) fails with a
// mid-stream KindUnavailable. A refusal (delta.refusal) is reported as a
// KindContentPolicy error with the refusal text, as is a finish_reason
// "content_filter" that arrives before any output.
//
// The SDK builds and sends the request, classifies HTTP errors and frames
// the SSE stream (packages/ssestream), but the chunks' JSON is decoded here,
// with encoding/json into a struct holding only the fields used: the SDK's
// reflective decoding of every chunk cost most of a worker's CPU per job.
//
// Request.MaxTokens is sent as max_completion_tokens (what OpenAI's
// reasoning models require) unless Options.LegacyMaxTokens, set by the
// presets of servers that only know max_tokens.
//
// This package depends on pkg/llm and pkg/llm/catalog only. It must never
// import NATS, pkg/bus or pkg/policy.
package openai
