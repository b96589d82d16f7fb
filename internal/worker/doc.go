// Package worker is the consume loop of a Switchyard worker: it pulls jobs of
// its model groups from JetStream and takes each through three steps:
//
//   - intake (intake.go, convert.go): decode, identify (the tenant from the
//     subject, never the body) and validate the message into a policy.Call,
//     as pure functions of the message, fuzzed without a server;
//   - the chain (chain.go): pkg/policy's executor chain around the router,
//     built once: deadline and cancel, tenant budget, structured-output
//     validation and re-ask, the tenant's own router;
//   - reply (reply.go): every publish (events, result, dead-letter copy)
//     and every ack, nak and term.
//
// The loop follows DESIGN.md's JetStream facts: it never pulls more jobs than
// it has free slots, signals InProgress well inside AckWait while a job runs,
// acks only after the result is stored, answers bad input with an error
// result and Term (copying what cannot be decoded to the DLQ), handles the
// last delivery itself, and on shutdown lets running jobs finish within a
// grace period and hands back the rest.
//
// It must never import internal/app or a provider package: it runs whatever
// Executor it is given.
package worker
