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
// <reply> defaults to llm.res.<job-id>.
//
// # Tenants
//
// A named tenant T has the same subjects under llm.t.T (llm.t.T.req.<group>,
// llm.t.T.res.<job-id>, llm.t.T.cancel.<job-id>), its own request stream
// (LLM_REQUESTS_T), large-request bucket (LLM_OBJECTS_T) and cancel bucket
// (LLM_CANCEL_T); the v1 subjects above are the anonymous tenant's. NATS
// permissions force the tenant token for a tenant's users, and the worker
// reads a job's tenant from the subject it arrived on, never from its body.
// Subjects builds and parses every name; a Client made WithTenant works in
// that tenant's namespace. docs/wire.md is the whole contract and
// docs/security.md the trust model.
package bus
