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
// Claude on Google Vertex AI is reached with Options.Vertex (URL and body
// rewrite plus a bearer token from an explicit token provider). Amazon
// Bedrock is not offered: the SDK's bedrock package needs the AWS SDK (SigV4
// signing, binary event streams), which this module does not carry.
//
// It must never import NATS, pkg/bus or pkg/policy.
package anthropic
