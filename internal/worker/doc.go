// Package worker is the consume loop of a Switchyard worker: it pulls jobs of
// its model groups from JetStream, checks them, runs them through the policy
// router, streams events and publishes one result per job, then acks.
//
// The loop follows DESIGN.md's JetStream facts: it never pulls more jobs than
// it has free slots, signals InProgress well inside AckWait while a job runs,
// acks only after the result is stored, answers bad input with an error
// result and Term (copying what cannot be decoded to the DLQ), handles the
// last delivery itself, and on shutdown lets running jobs finish within a
// grace period and hands back the rest.
//
// Requests that ask for JSON (response_format json_object or json_schema)
// or offer tools get their schemas compiled at intake (a broken one is
// invalid_request), their answers validated, and invalid answers re-asked
// with the errors, up to validation_retries (structured.go); streamed ones
// also get `partial` events with the object parsed so far.
package worker
