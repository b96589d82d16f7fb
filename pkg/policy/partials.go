package policy

import (
	"reflect"
	"strings"
	"time"

	"github.com/switchyard/switchyard/pkg/llm/structured"
)

// partials turns the text of a streamed JSON answer into EventPartial
// events: the best-effort object parsed so far, at most a few per second
// and only when it changed. The text is parsed only when the throttle lets
// an event go, so a fast stream costs a handful of parses, not one per
// chunk.
type partials struct {
	next     func(Event)
	text     strings.Builder
	throttle *structured.Throttle
	last     any
	has      bool
}

func newPartials(next func(Event), now func() time.Time) *partials {
	return &partials{next: next, throttle: structured.NewThrottle(structured.DefaultPartialsPerSecond, now)}
}

// emit passes ev on and follows the answer's text.
func (p *partials) emit(ev Event) {
	if ev.Type == EventRestart {
		p.text.Reset() // the text so far is discarded
		p.last, p.has = nil, false
	}
	p.next(ev)
	if ev.Type == EventChunk {
		p.text.WriteString(ev.Delta)
		if p.throttle.Offer(true) {
			p.send()
		}
	}
}

// flush sends the parse of the whole text when the throttle held a change
// back (a try's stream is complete). It is a no-op on a nil *partials.
func (p *partials) flush() {
	if p != nil && p.throttle.Flush() {
		p.send()
	}
}

func (p *partials) send() {
	v, ok := structured.ParsePartial(p.text.String())
	if !ok || (p.has && reflect.DeepEqual(v, p.last)) {
		return
	}
	p.last, p.has = v, true
	p.next(Event{Type: EventPartial, Partial: v})
}
