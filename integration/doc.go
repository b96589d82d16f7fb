// Package integration holds Switchyard's container chaos suites: real
// containers, real faults. The tests build static binaries of nats-server
// (from its Go module) and of ./cmd/worker, bake them into images FROM
// scratch (nothing is pulled from a registry), start a 3-node JetStream
// cluster with R3 streams and three worker containers with
// testcontainers-go, drive load with the pkg/bus Go client and assert on
// every job's result while workers are killed, paused, restarted and cut
// off, NATS nodes are stopped, cut off and run out of disk, and providers
// fail.
//
// The suite needs a local Docker engine, and root for the disk-full fault
// (each node's store is a tmpfs of fixed size mounted on the host); without
// them it fails rather than skipping. It disables Ryuk
// (TESTCONTAINERS_RYUK_DISABLED=true) and removes its containers and
// networks itself. A partition is a Docker network disconnect; healing it
// reconnects the container with the address it had, so that connections
// stall and resume as in a real partition.
//
// TestChaos runs fixed scenarios one after the other on one fleet (kill -9
// a worker, stop a stream leader, rolling restart, fault storm with a
// paused worker, a NATS node cut off, a worker cut off mid-stream, bad
// inputs):
//
//	go test -v -count=1 -run 'TestChaos$' ./integration
//
// One scenario alone, on a fresh fleet (anchor both parts: an unanchored
// TestChaos also runs TestChaosSchedule and the other TestChaos* tests;
// and give the run go test's -timeout, as the image builds take what the
// run has left, far more than go test's default 10 minutes on a loaded
// machine):
//
//	go test -v -count=1 -timeout 30m -run '^TestChaos$/^partition_nats_node$' ./integration
//
// A failed test keeps every container's whole log under the temp dir
// (switchyard-integration-<run>/, named in the output); with
// SWITCHYARD_KEEP_LOGS=1 a passing one does too.
//
// Each scenario prints one line: jobs, ok, lost (jobs without a stored
// result at the end), duplicated (jobs with more than one message in
// LLM_RESULTS), restarted (jobs whose events reached delivery attempt 2 or
// more), expired and late (for jobs with a timeout: deadline_exceeded
// results, and results that broke the deadline) and the p50/p99/max
// completion time from first publish to result. go test prints them only
// with -v or on failure.
//
// TestChaosSchedule (make chaos; 2 minutes in make test) runs a randomized
// schedule: a seeded mix of jobs and faults drawn from the same seed, sent
// by an anonymous producer and two tenants each connected as its own NATS
// user (deployments/nats/permissions.conf, see chaosAuth; each tenant also subscribes to
// everything and tries direct gets of the others' results, which the
// server must refuse), every job, event, result, cross-tenant read and
// provider call recorded in a history, and a checker
// (check) that fails the run on any broken promise. Its workers call a
// provider mock served by the test process (providerMock), which counts
// every call per job. A failing seed replays with CHAOS_SEED; the history
// is written to a file that TestChaosRecheck checks again. make
// chaos-broken runs it against a worker built to ack jobs before their
// result is stored, and passes only if the checker catches that.
//
// The package has no non-test code. Its tests import pkg/bus (the producer
// side of the wire contract) and must never import internal/ packages or
// pkg/policy: they see the fleet only from outside, as a user does.
package integration
