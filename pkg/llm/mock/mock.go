package mock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
)

// requestsKept is how many requests Requests remembers.
const requestsKept = 1000

// Provider is the mock llm.Provider. It is safe for concurrent use.
type Provider struct {
	cfg Config

	calls     atomic.Int64
	callsOK   atomic.Int64
	jsonCalls atomic.Int64

	inflight     atomic.Int64 // calls from Stream until their stream ended
	peak         atomic.Int64 // the most inflight ever was
	overCapacity atomic.Int64 // calls refused because Capacity were in flight

	mu   sync.Mutex
	reqs []llm.Request
}

var (
	_ llm.Provider           = (*Provider)(nil)
	_ llm.Namer              = (*Provider)(nil)
	_ llm.CapabilityReporter = (*Provider)(nil)
)

// Capabilities implements llm.CapabilityReporter from Config.Capabilities,
// for any model name: the zero value (unknown) when none are configured.
func (p *Provider) Capabilities(string) llm.Capabilities {
	c := p.cfg.Capabilities
	if c == nil {
		return llm.Capabilities{}
	}
	return llm.Capabilities{Tools: c.tools(), Vision: c.vision()}
}

// New returns a mock provider; cfg's zero fields take their defaults. An
// invalid cfg (see Config.Validate) is not rejected here: unknown kinds are
// ignored. Call Validate when decoding config.
func New(cfg Config) *Provider {
	return &Provider{cfg: cfg.WithDefaults()}
}

// ProviderName returns "mock".
func (p *Provider) ProviderName() string { return "mock" }

// Calls returns how many times Stream was called.
func (p *Provider) Calls() int64 { return p.calls.Load() }

// CallsOK returns how many streams ended cleanly with a finish reason.
func (p *Provider) CallsOK() int64 { return p.callsOK.Load() }

// Requests returns copies of the last 1000 requests, oldest first.
func (p *Provider) Requests() []llm.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]llm.Request(nil), p.reqs...)
}

// fault is what one call will do wrong.
type fault struct {
	err       *llm.Error
	hang      bool
	failAfter int  // >0: fail mid-stream after this many chunks
	slow      bool // the first token is SlowFactor times later
}

func (p *Provider) newError(k llm.Kind, retryAfter time.Duration) *llm.Error {
	e := &llm.Error{Kind: k, Provider: "mock", Status: statusOf(k), Message: "injected " + k.String()}
	if k == llm.KindRateLimited {
		e.RetryAfter = retryAfter
	}
	return e
}

// draw decides the fault of call n (0-based).
func (p *Provider) draw(n int64) fault {
	if n < int64(len(p.cfg.Script)) {
		s := p.cfg.Script[n]
		switch {
		case s.Error != "":
			k, ok := kindByName(s.Error)
			if !ok {
				return fault{}
			}
			return fault{err: p.newError(k, cmpDur(s.RetryAfter, p.cfg.RetryAfter))}
		case s.Hang:
			return fault{hang: true}
		case s.FailAfter > 0:
			return fault{failAfter: s.FailAfter}
		}
		return fault{}
	}
	rng := rand.New(rand.NewPCG(uint64(p.cfg.Seed), uint64(n)))
	// The slow draw comes last, so that adding it changed no earlier
	// seed's faults.
	u, uh, um, us := rng.Float64(), rng.Float64(), rng.Float64(), rng.Float64()
	var cum float64
	for _, k := range faultKinds {
		cum += p.cfg.ErrorRate[k.String()]
		if u < cum {
			return fault{err: p.newError(k, p.cfg.RetryAfter)}
		}
	}
	if uh < p.cfg.HangRate {
		return fault{hang: true}
	}
	if um < p.cfg.MidStreamRate {
		return fault{failAfter: p.cfg.FailAfterChunks}
	}
	return fault{slow: us < p.cfg.SlowRate}
}

func cmpDur(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

func ctxError(ctx context.Context, midStream bool) *llm.Error {
	k := llm.KindCancelled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		k = llm.KindTimeout
	}
	return &llm.Error{Kind: k, Provider: "mock", MidStream: midStream, Err: ctx.Err()}
}

// Stream implements llm.Provider.
func (p *Provider) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	n := p.calls.Add(1) - 1
	p.remember(req)
	if err := ctx.Err(); err != nil {
		return nil, ctxError(ctx, false)
	}
	if err := p.refuse(req); err != nil {
		return nil, err
	}
	slowdown, release, cerr := p.admit()
	if cerr != nil {
		return nil, cerr
	}
	f := p.draw(n)
	if f.err != nil {
		defer release()
		if err := p.errorDelay(ctx); err != nil {
			return nil, err
		}
		return nil, f.err
	}
	if f.hang {
		<-ctx.Done()
		release()
		return nil, ctxError(ctx, false)
	}
	chunks, finish, err := p.answer(ctx, req)
	if err != nil {
		release()
		return nil, generationError(ctx, err)
	}
	completion := 0
	for _, c := range chunks {
		if c.Delta != "" || len(c.ToolCalls) > 0 {
			completion++
		}
	}
	prompt := estimatePrompt(req)
	chunks = append(chunks, llm.Chunk{FinishReason: finish, Usage: &llm.Usage{
		PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion,
	}})
	ttft := scale(p.cfg.TTFT, slowdown)
	if f.slow {
		ttft = scale(ttft, p.cfg.SlowFactor)
	}
	return &stream{p: p, ctx: ctx, chunks: chunks, failAfter: f.failAfter, release: release,
		ttft: ttft, chunkDelay: scale(p.cfg.ChunkDelay, slowdown)}, nil
}

// refuse fails a request that uses a capability the mock was declared
// without, as a vendor answers a model that cannot take it.
func (p *Provider) refuse(req *llm.Request) *llm.Error {
	c := p.cfg.Capabilities
	switch {
	case len(req.Tools) > 0 && !c.tools():
		return &llm.Error{Kind: llm.KindBadRequest, Provider: "mock", Status: 400, Message: "this model does not support tools"}
	case req.HasImages() && !c.vision():
		return &llm.Error{Kind: llm.KindBadRequest, Provider: "mock", Status: 400, Message: "this model does not support image input"}
	}
	return nil
}

func (p *Provider) remember(req *llm.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.reqs) >= requestsKept {
		p.reqs = append(p.reqs[:0], p.reqs[1:]...)
	}
	r := *req
	r.Messages = append([]llm.Message(nil), req.Messages...)
	p.reqs = append(p.reqs, r)
}

// estimatePrompt is the mock's token count: a quarter of the text's length
// plus 4 per message.
func estimatePrompt(req *llm.Request) int {
	n := 0
	for i := range req.Messages {
		n += len(req.Messages[i].Text())/4 + 4
	}
	return n
}

// promptHash hashes the request's messages, except a trailing assistant
// message (a continuation prefix), so that a continued call answers the same
// text as the call it continues.
func promptHash(msgs []llm.Message) uint64 {
	h := fnv.New64a()
	for i := range msgs {
		if i == len(msgs)-1 && msgs[i].Role == llm.RoleAssistant {
			break
		}
		fmt.Fprintf(h, "%s\x00%s\x00", msgs[i].Role, msgs[i].Text())
	}
	return h.Sum64()
}

// answer builds the chunks of the answer to req and its finish reason. It
// fails when a schema of req has no value the generator can make within its
// bounds (see MaxAnswerBytes), or when ctx ends while it generates.
func (p *Provider) answer(ctx context.Context, req *llm.Request) ([]llm.Chunk, llm.FinishReason, error) {
	rng := rand.New(rand.NewPCG(uint64(p.cfg.Seed), promptHash(req.Messages)))
	if p.wantsTools(req) {
		chunks, err := p.toolChunks(ctx, req, rng)
		return chunks, llm.FinishToolCalls, err
	}
	if rf := req.ResponseFormat; rf != nil && (rf.Type == llm.FormatJSONObject || rf.Type == llm.FormatJSONSchema) {
		chunks, err := p.jsonChunks(ctx, req, rng)
		return chunks, llm.FinishStop, err
	}
	var words []string
	if p.cfg.Text != "" {
		words = strings.SplitAfter(p.cfg.Text, " ")
	} else {
		words = make([]string, p.cfg.Tokens)
		for i := range words {
			w := vocabulary[rng.IntN(len(vocabulary))]
			if i > 0 {
				w = " " + w
			}
			words[i] = w
		}
	}
	finish := llm.FinishStop
	if req.MaxTokens > 0 && req.MaxTokens < len(words) {
		words, finish = words[:req.MaxTokens], llm.FinishLength
	}
	// A trailing assistant message is a continuation prefix: answer the rest.
	if m := len(req.Messages); m > 0 && req.Messages[m-1].Role == llm.RoleAssistant && len(req.Messages[m-1].ToolCalls) == 0 {
		if prefix := req.Messages[m-1].Text(); prefix != "" && strings.HasPrefix(strings.Join(words, ""), prefix) {
			n := 0
			for i, w := range words {
				if n+len(w) > len(prefix) {
					words = append([]string{w[len(prefix)-n:]}, words[i+1:]...)
					break
				}
				n += len(w)
				if n == len(prefix) {
					words = words[i+1:]
					break
				}
			}
		}
	}
	chunks := make([]llm.Chunk, 0, len(words)+1)
	for _, w := range words {
		if w != "" {
			chunks = append(chunks, llm.Chunk{Delta: w})
		}
	}
	return chunks, finish, nil
}

// wantsTools reports whether the answer to req is a tool call. A
// conversation whose last message is a tool result is answered with text
// whatever the tool choice, so that a client's tool loop ends: the model has
// what it asked for.
func (p *Provider) wantsTools(req *llm.Request) bool {
	if len(req.Tools) == 0 {
		return false
	}
	if m := len(req.Messages); m > 0 && req.Messages[m-1].Role == llm.RoleTool {
		return false
	}
	if req.ToolChoice == nil {
		return p.cfg.ToolCalls
	}
	switch req.ToolChoice.Mode {
	case llm.ToolChoiceRequired, llm.ToolChoiceFunction:
		return true
	case llm.ToolChoiceAuto, "":
		return p.cfg.ToolCalls
	}
	return false
}

func (p *Provider) toolChunks(ctx context.Context, req *llm.Request, rng *rand.Rand) ([]llm.Chunk, error) {
	tools := req.Tools
	if tc := req.ToolChoice; tc != nil && tc.Mode == llm.ToolChoiceFunction {
		for _, t := range req.Tools {
			if t.Name == tc.Name {
				tools = []llm.Tool{t}
				break
			}
		}
	}
	var chunks []llm.Chunk
	for i := range p.cfg.ParallelToolCalls {
		t := tools[i%len(tools)]
		args := "{}"
		if len(t.Parameters) > 0 {
			_, a, err := generate(ctx, schemaOf(t.Parameters), rng)
			if err != nil {
				return nil, fmt.Errorf("tool %s: %w", t.Name, err)
			}
			args = a
		}
		id := fmt.Sprintf("call_%016x", rng.Uint64())
		frags := split(args, 12)
		chunks = append(chunks, llm.Chunk{ToolCalls: []llm.ToolCallDelta{{Index: i, ID: id, Name: t.Name}}})
		for _, f := range frags {
			chunks = append(chunks, llm.Chunk{ToolCalls: []llm.ToolCallDelta{{Index: i, Arguments: f}}})
		}
	}
	return chunks, nil
}

func (p *Provider) jsonChunks(ctx context.Context, req *llm.Request, rng *rand.Rand) ([]llm.Chunk, error) {
	rf := req.ResponseFormat
	n := p.jsonCalls.Add(1) - 1
	var body string
	switch {
	case n < int64(p.cfg.InvalidJSONFirst) && n%2 == 0:
		body = "Sure! Here is the JSON you asked for: {answer: oops"
	case n < int64(p.cfg.InvalidJSONFirst):
		if rf.Type == llm.FormatJSONSchema {
			s := schemaOf(rf.Schema)
			v, _, err := generate(ctx, s, rng)
			if err != nil {
				return nil, err
			}
			body = mustJSON(violate(s, v))
		} else {
			body = `["not", "an", "object"]`
		}
	case rf.Type == llm.FormatJSONSchema:
		_, b, err := generate(ctx, schemaOf(rf.Schema), rng)
		if err != nil {
			return nil, err
		}
		body = b
	default:
		body = mustJSON(map[string]any{"answer": words(rng, min(p.cfg.Tokens, 8))})
	}
	// Small pieces stream like tokens; a large answer comes in at most about
	// 4096 pieces, so that it is not a million chunks.
	var chunks []llm.Chunk
	for _, f := range split(body, max(8, len(body)/4096)) {
		chunks = append(chunks, llm.Chunk{Delta: f})
	}
	return chunks, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// split cuts s into pieces of at most n bytes, never inside a UTF-8 sequence.
func split(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		i := min(n, len(s))
		for i < len(s) && i > 0 && s[i]&0xC0 == 0x80 {
			i++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// stream replays precomputed chunks, honouring delays, faults and ctx.
type stream struct {
	p         *Provider
	ctx       context.Context
	chunks    []llm.Chunk
	failAfter int
	release   func() // gives back the call's place among those in flight
	// ttft and chunkDelay are the call's delays: the configured ones,
	// slowed by the load it started under, and a slow first token.
	ttft, chunkDelay time.Duration
	i                int
	cur              llm.Chunk
	err              error
	done             bool
	// timer paces the chunks; one per stream, reset for each wait, so that
	// a long stream does not allocate a timer per chunk.
	timer *time.Timer
}

func (s *stream) Next() bool {
	if s.done {
		return false
	}
	if s.failAfter > 0 && s.i >= min(s.failAfter, len(s.chunks)-1) {
		s.finish(&llm.Error{Kind: llm.KindUnavailable, Provider: "mock", Status: 0, MidStream: s.i > 0, Message: "injected stream cut"})
		return false
	}
	delay := s.chunkDelay
	if s.i == 0 {
		delay = s.ttft
	}
	if s.i == len(s.chunks)-1 && s.i > 0 {
		delay = 0 // the end marker follows the last content chunk at once
	}
	if !s.wait(delay) {
		s.finish(ctxError(s.ctx, s.i > 0))
		return false
	}
	s.cur = s.chunks[s.i]
	s.i++
	if s.i == len(s.chunks) {
		s.p.callsOK.Add(1)
		s.done = true
		s.release()
		// Still report this last chunk.
		s.chunks = s.chunks[:0]
		return true
	}
	return true
}

func (s *stream) wait(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	// Since Go 1.23 Reset after Stop or after the timer fired never leaves a
	// stale tick in the channel.
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	select {
	case <-s.timer.C:
		return s.ctx.Err() == nil
	case <-s.ctx.Done():
		s.timer.Stop()
		return false
	}
}

func (s *stream) finish(err error) {
	s.err, s.done, s.cur = err, true, llm.Chunk{}
	s.stopTimer()
	s.release()
}

func (s *stream) stopTimer() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

func (s *stream) Current() llm.Chunk { return s.cur }
func (s *stream) Err() error         { return s.err }
func (s *stream) Close() error {
	s.done = true
	s.stopTimer()
	s.release()
	return nil
}

// errorDelay waits Config.ErrorDelay before a drawn fault, or until ctx ends.
func (p *Provider) errorDelay(ctx context.Context) error {
	if p.cfg.ErrorDelay <= 0 {
		return nil
	}
	t := time.NewTimer(p.cfg.ErrorDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctxError(ctx, false)
	case <-t.C:
		return nil
	}
}
