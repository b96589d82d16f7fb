//go:build chaos_broken_ack

package worker

// ackOnPickUp, set only by the chaos_broken_ack build tag, breaks the
// worker on purpose: it acks every job when it picks it up, before the
// result is stored, so that a job whose worker dies or is cut off is lost
// instead of redelivered. `make chaos-broken` builds the container image
// with the tag and requires the randomized schedule's checker to report
// the lost jobs; no other build has it.
const ackOnPickUp = true
