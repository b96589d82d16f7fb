// Package mock is a deterministic, scriptable llm.Provider: the embedded
// demo, the unit tests, the chaos suites and the benchmarks run on it.
//
// Every answer is a pure function of the configured seed and the request (the
// same prompt and seed give the same text), and every fault is drawn from a
// random generator seeded by the seed and the call number, so a run is
// reproducible. Latency (time to first token, delay between chunks), errors
// of every llm.Kind with Retry-After, hangs, mid-stream failures, invalid JSON,
// schema-conforming JSON and tool calls can all be configured from YAML.
//
// It must never import NATS, pkg/bus or pkg/policy.
package mock
