// Package fleet shares the policy router's breaker and rate state between the
// workers of a fleet through NATS JetStream KV. It implements
// policy.SharedState: a watcher keeps every worker's map of open breakers
// current within milliseconds, and rpm/tpm counters per deployment and minute
// are updated with compare-and-swap so that all workers together stay within a
// deployment's limits.
//
// It is service wiring, not a public API. It may import NATS and pkg/policy,
// never a provider package.
package fleet
