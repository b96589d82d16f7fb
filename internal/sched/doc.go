// Package sched decides which of a worker's queues its free slots are
// offered to: the priority classes of one model group, each class shared
// between the tenants that have work. It is pure bookkeeping: it knows
// nothing of NATS, and the worker's pull loop (internal/worker) does the
// fetching it plans. See docs/scheduling.md.
//
// It must never import NATS, the worker, or a provider.
package sched
