package worker

import (
	"github.com/switchyard/switchyard/pkg/bus"
)

// scrub removes the fleet's secrets from text about to leave the worker.
func (w *Worker) scrub(s string) string { return w.scrubber.Scrub(s) }

// scrubResult removes the fleet's secrets from a result's texts that can
// carry a provider's words: its error and its attempts' messages.
func (w *Worker) scrubResult(res *bus.Result) {
	if res.Error != nil {
		res.Error.Message = w.scrub(res.Error.Message)
	}
	for i := range res.Attempts {
		res.Attempts[i].Message = w.scrub(res.Attempts[i].Message)
	}
}
