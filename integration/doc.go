// Package integration holds Switchyard's container chaos suites: real
// containers, real faults. The tests build static binaries of nats-server
// (from its Go module) and of ./cmd/worker, bake them into images FROM
// scratch (nothing is pulled from a registry), start a 3-node JetStream
// cluster with R3 streams and three worker containers with
// testcontainers-go, drive load with the pkg/bus Go client and assert on
// every job's result while workers are killed, paused and restarted, NATS
// nodes are stopped and providers fail.
//
// The suite needs a local Docker engine; without one it fails rather than
// skipping. It disables Ryuk (TESTCONTAINERS_RYUK_DISABLED=true) and removes
// its containers and network itself.
//
// Run it with the figures printed:
//
//	go test -v -count=1 -run TestChaos ./integration
//
// Each scenario prints one line: jobs, ok, lost (jobs without a stored
// result at the end), duplicated (jobs with more than one message in
// LLM_RESULTS), restarted (jobs whose events reached delivery attempt 2 or
// more) and the p50/p99/max completion time from first publish to result.
// go test prints them only with -v or on failure.
//
// The package has no non-test code. Its tests import pkg/bus (the producer
// side of the wire contract) and must never import internal/ packages or
// pkg/policy: they see the fleet only from outside, as a user does.
package integration
