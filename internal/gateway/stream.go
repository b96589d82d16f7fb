package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/switchyard/switchyard/pkg/bus"
)

// frame is one SSE message: its event name (Anthropic's streams name them,
// OpenAI's do not) and its data.
type frame struct {
	event string
	data  []byte
}

// renderer turns a job's events and result into one vendor's frames. It is
// a pure function of the sequence it is fed, so that replaying a job's
// stored events yields the same frames, numbered alike: Last-Event-ID
// resumes by numbering.
type renderer interface {
	// event renders an event; an error ends the stream with it (a restarted
	// answer that does not repeat what was already sent).
	event(e *bus.Event) ([]frame, *apiError)
	// result renders a successful result, the last frames of the stream.
	result(r *bus.Result) ([]frame, *apiError)
	// failure renders a failure once frames went out.
	failure(e *apiError) []frame
	// started reports whether a frame is due: before that, a failure is
	// answered with an HTTP error status instead of a stream.
	started() bool
}

// errorResults is a renderer that renders failed results as results.
type errorResults interface{ errorResults() }

// sseWriter numbers frames and sends those after the client's
// Last-Event-ID, each write bounded by the slow-client timeout. go-sse
// encodes the events and reads Last-Event-ID; the writes and flushes are
// the gateway's own, because a go-sse Session flushes the headers alone
// before the first event (one more write to the socket per request, 6% of
// the gateway's CPU in the bench's profile).
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	n, skip uint64
	timeout time.Duration
	sent    bool // headers committed
	msg     sse.Message
}

func newSSEWriter(w http.ResponseWriter, r *http.Request, timeout time.Duration) (*sseWriter, error) {
	s, err := sse.Upgrade(w, r)
	if err != nil {
		return nil, err
	}
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
	if s.LastEventID.IsSet() {
		sw.skip, _ = strconv.ParseUint(s.LastEventID.String(), 10, 64)
	}
	return sw, nil
}

// resuming reports whether the client asked to resume after an event.
func (s *sseWriter) resuming() bool { return s.skip > 0 }

// send writes frames and flushes them.
func (s *sseWriter) send(fs []frame) error {
	wrote, err := s.write(fs)
	if err != nil || !wrote {
		return err
	}
	return s.flush()
}

// write writes frames without flushing; it reports whether any was due.
func (s *sseWriter) write(fs []frame) (bool, error) {
	wrote := false
	for _, f := range fs {
		s.n++
		if s.n <= s.skip {
			continue
		}
		s.msg = sse.Message{ID: sse.ID(strconv.FormatUint(s.n, 10))}
		if f.event != "" {
			s.msg.Type = sse.Type(f.event)
		}
		s.msg.AppendData(string(f.data))
		if err := s.deadline(); err != nil {
			return wrote, err
		}
		if _, err := s.msg.WriteTo(s.w); err != nil {
			return wrote, err
		}
		wrote = true
	}
	return wrote, nil
}

// comment keeps a quiet stream alive through proxies.
func (s *sseWriter) comment() error {
	m := sse.Message{}
	m.AppendComment("keep-alive")
	if err := s.deadline(); err != nil {
		return err
	}
	if _, err := m.WriteTo(s.w); err != nil {
		return err
	}
	return s.flush()
}

func (s *sseWriter) deadline() error {
	if !s.sent {
		h := s.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		s.sent = true
	}
	if s.timeout <= 0 {
		return nil
	}
	// A server without write deadlines (httptest's recorder) is fine.
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (s *sseWriter) flush() error { return s.rc.Flush() }

// keepAlive is how long a stream may be silent before a comment is sent
// (which commits the response to 200).
const keepAlive = 15 * time.Second

// streamJob answers a job as SSE. Until the renderer has a frame to send,
// a failure is an HTTP error in the vendor's shape; after, it is a frame.
// It reports whether the job ended (its result was seen).
//
// Frames are flushed when no further event is already waiting: a burst of
// chunks costs one write to the socket, not one each, and a lone chunk
// goes out at once.
func (g *Gateway) streamJob(ctx context.Context, w http.ResponseWriter, sw *sseWriter, a *attachment, rd renderer, werr errorWriter) bool {
	fail := func(e *apiError) {
		if !sw.sent {
			werr(w, e)
			return
		}
		_ = sw.send(rd.failure(e)) // the stream ends either way
	}
	// Only a live job's queue can be polled without blocking.
	_, canPoll := a.src.(*bus.Job)
	polled, stopPolling := context.WithCancel(ctx)
	stopPolling()
	unflushed := false
	for {
		var (
			ev  *bus.Event
			res *bus.Result
			err error
		)
		if unflushed && canPoll {
			ev, res, err = a.src.Next(polled)
			if err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
				if sw.flush() != nil {
					return false
				}
				unflushed = false
				continue
			}
		} else {
			if unflushed {
				if sw.flush() != nil {
					return false
				}
				unflushed = false
			}
			nctx, cancel := context.WithTimeout(ctx, keepAlive)
			ev, res, err = a.src.Next(nctx)
			cancel()
		}
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			if errors.Is(err, context.DeadlineExceeded) {
				if sw.comment() != nil {
					return false
				}
				continue
			}
			fail(busError(err))
			return false
		}
		if res != nil {
			if _, raw := rd.(errorResults); res.Status != bus.StatusOK && !raw {
				fail(resultError(res))
				return true
			}
			fs, e := rd.result(res)
			if e != nil {
				fail(e)
				return true
			}
			_ = sw.send(fs) // the job is over either way
			return true
		}
		fs, e := rd.event(ev)
		if e != nil {
			fail(e)
			return false
		}
		if len(fs) > 0 && !sw.sent {
			g.met.ttft(ctx)
		}
		wrote, err := sw.write(fs)
		if err != nil {
			return false
		}
		unflushed = unflushed || wrote
	}
}

// waitResult reads a source to its result.
func waitResult(ctx context.Context, src source) (*bus.Result, error) {
	for {
		_, res, err := src.Next(ctx)
		if err != nil {
			return nil, err
		}
		if res != nil {
			return res, nil
		}
	}
}

// transcript remembers what a stream has sent on each of its channels (the
// text, each tool call's arguments) so that, after a restart event, the new
// attempt's output is checked against it and only what goes beyond it is
// sent: a client cannot take back text it was shown.
type transcript struct {
	sent      map[string]*strings.Builder
	replaying map[string]int // after a restart: how much of sent the new attempt re-covered
}

func newTranscript() transcript { return transcript{sent: map[string]*strings.Builder{}} }

func (t *transcript) restart() { t.replaying = map[string]int{} }

// add returns the part of delta on channel ch that was not sent yet, or
// false when the new attempt contradicts what was sent.
func (t *transcript) add(ch, delta string) (string, bool) {
	b := t.sent[ch]
	if b == nil {
		b = &strings.Builder{}
		t.sent[ch] = b
	}
	if t.replaying == nil {
		b.WriteString(delta)
		return delta, true
	}
	sent := b.String()
	p := t.replaying[ch]
	n := min(len(sent)-p, len(delta))
	if sent[p:p+n] != delta[:n] {
		return "", false
	}
	rest := delta[n:]
	b.WriteString(rest)
	t.replaying[ch] = p + n + len(rest)
	return rest, true
}

// finish checks the final value of channel ch against what was sent and
// returns what is still to send, or false when they disagree.
func (t *transcript) finish(ch, final string) (string, bool) {
	sent := ""
	if b := t.sent[ch]; b != nil {
		sent = b.String()
	}
	if !strings.HasPrefix(final, sent) {
		return "", false
	}
	rest := final[len(sent):]
	if t.sent[ch] == nil {
		t.sent[ch] = &strings.Builder{}
	}
	t.sent[ch].WriteString(rest)
	return rest, true
}

func diverged() *apiError {
	e := newError(bus.CodeProviderUnavailable, "the answer was restarted after part of it was streamed, and the new attempt differs from what was sent; retry the request")
	e.Retryable = true
	return e
}
