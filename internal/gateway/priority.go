package gateway

import (
	"net/http"

	"github.com/switchyard/switchyard/pkg/bus"
)

// HeaderPriority names a request's priority class (interactive, default or
// batch) on any endpoint that runs a job; it wins over the body's
// "priority" field (chat completions and jobs). Without either, the job
// goes on the group's bare subject: its default class.
const HeaderPriority = "X-Switchyard-Priority"

// withPriority sets req's class from the header, and refuses a class that
// is not one.
func withPriority(r *http.Request, req *bus.Request) *apiError {
	if h := r.Header.Get(HeaderPriority); h != "" {
		req.Priority = bus.Priority(h)
	}
	if p := req.Priority; p != "" && !bus.ValidPriority(p) {
		return newError(bus.CodeInvalidRequest, "priority %q: want interactive, default or batch (body field priority or header %s)", string(p[:min(len(p), 64)]), HeaderPriority)
	}
	return nil
}
