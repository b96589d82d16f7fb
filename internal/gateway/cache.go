package gateway

import (
	"net/http"
	"strings"

	"github.com/switchyard/switchyard/pkg/bus"
)

// honourNoCache turns a request's Cache-Control: no-cache (or no-store)
// into the job's cache: false, so that the answer is neither read from the
// group's response cache nor stored in it.
func honourNoCache(r *http.Request, req *bus.Request) {
	for _, v := range r.Header.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			switch strings.ToLower(strings.TrimSpace(d)) {
			case "no-cache", "no-store":
				off := false
				req.Cache = &off
				return
			}
		}
	}
}
