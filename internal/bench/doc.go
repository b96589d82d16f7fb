// Package bench is Switchyard's load generator and benchmark harness.
//
// It holds what `submit bench` needs to drive any deployment (a rate- or
// concurrency-bounded job runner with latency histograms and errors by
// code) and what `submit bench --compare` (`make bench`) needs to measure,
// on one machine and in one run, a raw JetStream baseline doing the same
// message work as a job, the same workload through Switchyard, the latency a
// worker adds over a direct call to an OpenAI-compatible server, and many
// concurrent slow streams. The NATS server, the worker and the baseline
// consumer run as separate processes so that their CPU time and peak RSS can
// be read from /proc.
//
// It is internal wiring for a command: it may import pkg/bus, pkg/llm and
// internal/embedded, but nothing under pkg/ may import it, and it must never
// import internal/worker or pkg/policy (Switchyard is measured as a black
// box, through its wire contract, exactly as a user runs it). The one
// exception is profile_test.go, behind the benchprofile build tag: it runs
// the worker loop in the test process so that a CPU profile shows where a
// job's time goes:
//
//	go test -tags benchprofile -run '^$' -bench WorkerInProcess -benchtime 4000x \
//	    -cpuprofile cpu.out ./internal/bench
//	go tool pprof -top -cum -focus 'internal/worker|pkg/policy|pkg/llm' cpu.out
//
// (BenchmarkWorkerOpenAI and BenchmarkWorkerStreams profile sections c and d.)
package bench
