// Package anthropic is the llm.Provider for Anthropic's Messages API, built on
// the official SDK (github.com/anthropics/anthropic-sdk-go) with the SDK's
// retries switched off: the policy layer owns retries.
//
// It maps an llm.Request onto a streamed Messages call (system prompt in the
// system field, alternating user/assistant turns, image, tool_use and
// tool_result blocks, tools and tool_choice, native structured output through
// output_config.format), turns the SSE events back into llm.Chunks and
// classifies every failure as an *llm.Error.
//
// Claude on Google Vertex AI is reached with Options.Vertex, through the
// SDK's own vertex package with an explicit token provider (never
// Application Default Credentials). Claude on
// Amazon Bedrock is reached with Options.Bedrock, through the SDK's own
// bedrock package (SigV4 signing with static credentials, the binary event
// stream translated back to SSE); Bedrock's exceptions are classified like
// the Messages API's errors.
//
// It must never import NATS, pkg/bus or pkg/policy.
package anthropic
