// Package ops is what an operator does to the fleet's streams: find jobs and
// read one job's whole record (its request while it is kept, its attempts,
// result, cost, dead letters and stored events), and list, inspect, replay
// and purge dead letters. The web console (internal/console) and the CLI
// (`submit jobs`, `submit dlq`) both call it, so the two never disagree.
//
// It reads JetStream directly, with an operator's permissions (every
// tenant's request stream, the results and dead-letter streams). Every scan
// is bounded (a count and the context's deadline) and says when it stopped
// short. It imports pkg/bus and NATS, never the gateway, the worker or a
// provider.
package ops
