// Package gemini is the llm.Provider for Google's Gemini models, on the
// Gemini API or Vertex AI, built on the official SDK (google.golang.org/genai)
// with the SDK's HTTP retries and automatic stream continuation switched off:
// the policy layer owns retries.
//
// It maps an llm.Request onto streamGenerateContent (system instruction,
// "model" turns, inline and file image data, function declarations with
// JSON-Schema parameters, function calls and responses, native structured
// output through responseJsonSchema), turns the streamed
// GenerateContentResponses back into llm.Chunks and classifies every failure
// as an *llm.Error.
//
// It must never import NATS, pkg/bus or pkg/policy.
package gemini
