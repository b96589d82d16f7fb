package llm

// Primer is the buffering shared by provider streams that read their first
// chunk before Provider.Stream returns (so that a failure before any output
// is an ordinary error from Stream, not from the first Next). Embed it in a
// stream and pass the stream's own read function; it provides Current.
type Primer struct {
	cur     Chunk
	pending *Chunk
	started bool
}

// Prime reads and buffers the first chunk. It reports whether one was read;
// when not, the stream's error (or its clean end) says why.
func (p *Primer) Prime(read func() (Chunk, bool)) bool {
	c, ok := read()
	if !ok {
		return false
	}
	p.pending = &c
	return true
}

// Next hands out the buffered chunk first, then reads on.
func (p *Primer) Next(read func() (Chunk, bool)) bool {
	if p.pending != nil {
		p.cur, p.pending = *p.pending, nil
		p.started = true
		return true
	}
	c, ok := read()
	if !ok {
		return false
	}
	p.cur, p.started = c, true
	return true
}

// Current implements Stream.
func (p *Primer) Current() Chunk { return p.cur }

// Output reports whether a chunk was read (handed out or buffered): a
// failure from now on is mid-stream.
func (p *Primer) Output() bool { return p.started || p.pending != nil }
