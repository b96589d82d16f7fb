package openai

import (
	"bufio"
	"bytes"
	"io"

	"github.com/switchyard/switchyard/pkg/llm"
)

// Coalescing: a server often sends several chunks back to back (a fast
// model, a proxy that buffers, a local server), so that they arrive
// together. Each chunk handed on costs a bus event, a NATS message and, at
// the gateway, an SSE frame, so the text of the events that have already
// arrived is merged into the chunk being handed on. Only what is already in
// this process is merged: reading it cannot block, so no chunk waits for one
// still on its way, and a stream whose chunks come apart is handed on chunk
// by chunk as before. The first chunk is never merged into, so the time to
// first token is what it was.

// lineReader feeds the SDK's SSE decoder one line per Read, from its own
// buffer. The decoder's bufio.Scanner then never holds more than the line
// it is returning, and what has arrived beyond it is in br, where ready can
// see it.
type lineReader struct {
	body io.ReadCloser
	br   *bufio.Reader
	rest []byte // of the line ReadSlice returned, not yet handed out
}

func newLineReader(body io.ReadCloser) *lineReader {
	return &lineReader{body: body, br: bufio.NewReaderSize(body, 16<<10)}
}

func (r *lineReader) Read(p []byte) (int, error) {
	if len(r.rest) == 0 {
		line, err := r.br.ReadSlice('\n')
		if len(line) == 0 {
			return 0, err
		}
		// A line longer than the buffer comes in parts (ErrBufferFull);
		// an error after data is returned by the next call.
		r.rest = line
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

func (r *lineReader) Close() error { return r.body.Close() }

// ready reports whether a whole event with data is buffered, so that the
// decoder's next event is read without waiting for the network. It follows
// the decoder's rule: an event is dispatched on an empty line after at
// least one "data" field.
func (r *lineReader) ready() bool {
	if len(r.rest) > 0 {
		return false // in the middle of a line: not between events
	}
	b, _ := r.br.Peek(r.br.Buffered())
	data := false
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false // the rest has not arrived
		}
		line := bytes.TrimSuffix(b[:i], []byte{'\r'})
		b = b[i+1:]
		if len(line) == 0 {
			if data {
				return true
			}
			continue
		}
		if name, _, _ := bytes.Cut(line, []byte{':'}); string(name) == "data" {
			data = true
		}
	}
}

// coalesce merges into the text chunk just queued the text of the events
// that are already buffered (see above), until one of them is not plain
// text (a tool call, the end of the stream) or none is left.
func (s *stream) coalesce() {
	if s.lr == nil || !s.started || len(s.queue) != 1 || !plainText(&s.queue[0]) {
		return
	}
	merged := false
	for !s.done && len(s.queue) == 1 && s.lr.ready() {
		if !s.dec.Next() {
			s.stop(s.dec.Err())
			break
		}
		s.event(s.dec.Event())
		if len(s.queue) == 2 && plainText(&s.queue[1]) {
			if !merged {
				s.text = append(s.text[:0], s.queue[0].Delta...)
				merged = true
			}
			s.text = append(s.text, s.queue[1].Delta...)
			s.queue = s.queue[:1]
		}
	}
	if merged {
		s.queue[0].Delta = string(s.text)
	}
}

// plainText reports whether a chunk is text alone, which can be merged.
func plainText(c *llm.Chunk) bool {
	return c.Delta != "" && len(c.ToolCalls) == 0 && c.FinishReason == "" && c.Usage == nil
}
