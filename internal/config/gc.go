package config

import (
	"os"
	"runtime/debug"
)

// ApplyGCDefaults trades memory for CPU and tail latency in Switchyard's
// processes (the worker, the gateway) unless the operator chose: their heap
// is mostly short-lived per-chunk garbage, so the default GOGC=100 collects
// far more often than it needs to. GOGC=400 with a soft memory limit
// (GOMEMLIMIT, default 1 GiB) keeps collections rare but bounded.
func ApplyGCDefaults() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}
