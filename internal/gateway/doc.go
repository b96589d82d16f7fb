// Package gateway is Switchyard's HTTP front door: OpenAI's chat completions
// and Batch API, Anthropic's Messages API, and Switchyard's own async jobs,
// each turned into jobs on the queue and answered from the jobs' events and
// results.
//
// The gateway is a producer like any other: it talks to the fleet only
// through NATS and pkg/bus (a trusted producer that publishes in the
// tenant's namespace of the API key it authenticated). It is stateless:
// what must outlive a request — stored events and results, async jobs and
// their webhook deliveries, uploaded files and batches — lives in JetStream,
// so that any number of gateways can run behind a load balancer and any of
// them can be restarted at any time.
//
// It must never import internal/worker, pkg/policy or pkg/llm: a gateway
// knows groups by name only, never providers.
//
// docs/http.md is the user's reference of every endpoint, header and error.
package gateway
