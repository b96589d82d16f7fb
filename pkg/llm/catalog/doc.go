// Package catalog is the model catalogue: context windows, output limits,
// list prices and capabilities of the common models of OpenAI, Anthropic,
// Google Gemini and a few open models served by Groq, Together and DeepSeek.
//
// The router uses it to skip deployments that cannot serve a request (no
// vision, prompt larger than the context window), to estimate a prompt's size
// before the call and to price a call afterwards. The built-in entries are
// list prices at the time of writing; deployments with negotiated prices or
// newer models are described with [Catalog.With].
//
// Lookup is by exact name, then by the longest known prefix, so dated
// snapshots such as "gpt-4o-2024-08-06" or "claude-sonnet-4-20250514" find
// their family's entry.
//
// It depends on pkg/llm only and must never import NATS, pkg/bus or
// pkg/policy.
package catalog
