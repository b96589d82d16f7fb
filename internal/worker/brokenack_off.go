//go:build !chaos_broken_ack

package worker

// ackOnPickUp is false in every build but the one the randomized chaos
// schedule uses to prove its checker (see brokenack_on.go).
const ackOnPickUp = false
