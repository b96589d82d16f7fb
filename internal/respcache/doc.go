// Package respcache keeps the response cache of pkg/policy's Cache
// middleware in NATS KV: one bucket per tenant (bus.Subjects.CacheBucket),
// an entry per answer with the group's TTL as the key's TTL, and a lock key
// beside it so that the fleet computes an expired answer once.
//
// It is wiring for internal packages; it must not import the providers or
// internal/worker.
package respcache
