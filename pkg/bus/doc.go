// Package bus is Switchyard's wire contract (v1): subject names, the request,
// event and result types, their msgpack and JSON codecs, provisioning of the
// JetStream streams and consumers, and a Go client for producers.
//
// It knows nothing of providers or routing policies and must never import
// pkg/llm, pkg/policy or anything under internal/: a producer takes pkg/bus
// alone to publish jobs from Go.
//
// # Subjects (default prefix "llm")
//
//	llm.req.<group>        requests; stream LLM_REQUESTS (work queue)
//	<reply>.events         start/chunk/partial/restart/retry/fallback/tool_call events
//	<reply>.result         exactly one result per job; stream LLM_RESULTS
//	llm.cancel.<job-id>    cancel a job (core NATS + a KV marker)
//	llm.dlq.<group>        poison messages; stream LLM_DLQ
//
// <reply> defaults to llm.res.<job-id>. See DESIGN.md section 2 for the
// whole contract.
package bus
