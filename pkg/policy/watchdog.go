package policy

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
)

// watchSpec is a deployment's stream timeouts, with their messages, built
// once per load.
type watchSpec struct {
	ttft, idle       time.Duration
	ttftMsg, idleMsg string
}

func newWatchSpec(to TimeoutOptions) watchSpec {
	return watchSpec{
		ttft: to.TTFT, idle: to.Idle,
		ttftMsg: fmt.Sprintf("no first token within %v", to.TTFT),
		idleMsg: fmt.Sprintf("no chunk for %v", to.Idle),
	}
}

// watchdog cancels an attempt that waits too long for its first chunk
// (time to first token) or for the next one (idle). These are the timeouts
// of a stream, which failsafe-go's timeout (the attempt's total) does not
// express. It uses one timer per attempt, reset on every chunk without
// allocating.
type watchdog struct {
	spec   *watchSpec
	cancel context.CancelFunc
	t      *time.Timer
	what   atomic.Pointer[string] // what the armed timeout is for
	fired  atomic.Pointer[string] // what timed out
}

// startWatchdog arms the time-to-first-token timeout; cancel ends the
// attempt when a timeout fires.
func startWatchdog(spec *watchSpec, cancel context.CancelFunc) *watchdog {
	w := &watchdog{spec: spec, cancel: cancel}
	w.arm(spec.ttft, &spec.ttftMsg)
	return w
}

// chunk re-arms the watchdog for the idle timeout: a chunk arrived.
func (w *watchdog) chunk() { w.arm(w.spec.idle, &w.spec.idleMsg) }

func (w *watchdog) arm(d time.Duration, what *string) {
	if d <= 0 {
		if w.t != nil {
			w.t.Stop()
		}
		return
	}
	w.what.Store(what)
	if w.t == nil {
		w.t = time.AfterFunc(d, func() { w.fired.Store(w.what.Load()); w.cancel() })
		return
	}
	w.t.Reset(d)
}

// stop disarms the watchdog for good.
func (w *watchdog) stop() {
	if w.t != nil {
		w.t.Stop()
	}
}

// err is the timeout error when the watchdog fired, else cause.
func (w *watchdog) err(cause error, sent bool) error {
	if what := w.fired.Load(); what != nil {
		return &llm.Error{Kind: llm.KindTimeout, MidStream: sent, Message: *what, Err: cause}
	}
	return cause
}
