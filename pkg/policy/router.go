package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
	"github.com/switchyard/switchyard/pkg/llm/structured"
)

// Router executes requests against model groups. It is safe for concurrent use.
type Router struct {
	cfg    atomic.Pointer[routerConfig]
	now    func() time.Time
	shared SharedState

	mu     sync.Mutex
	states map[string]*depState // by stateKey
}

type routerConfig struct {
	groups map[string]*group
	names  []string
}

type group struct {
	Group
	opts GroupOptions // with defaults
	deps []*deployment
}

type deployment struct {
	Deployment
	opts     DeploymentOptions // with defaults
	info     catalog.Model     // ResolveModel's record
	timeouts TimeoutOptions    // group's, overridden by the deployment's
	state    *depState
}

// NewRouter returns a router over groups.
func NewRouter(groups []Group, opts ...Option) (*Router, error) {
	r := &Router{now: time.Now, states: map[string]*depState{}}
	for _, o := range opts {
		o(r)
	}
	if err := r.Reload(groups); err != nil {
		return nil, err
	}
	return r, nil
}

func stateKey(d *Deployment) string {
	prov := fmt.Sprintf("%T", d.Provider)
	if n, ok := d.Provider.(llm.Namer); ok {
		prov = n.ProviderName()
	}
	return d.Name + "\x00" + prov + "\x00" + d.Model
}

// Reload swaps the router's groups. Deployments whose name, provider and
// model are unchanged keep their breaker, limit and latency state (a breaker
// is rebuilt, closed, if its options changed). Calls in flight finish on the
// old configuration.
func (r *Router) Reload(groups []Group) error {
	cfg := &routerConfig{groups: make(map[string]*group, len(groups))}
	r.mu.Lock()
	defer r.mu.Unlock()
	states := map[string]*depState{}
	for i := range groups {
		g := groups[i]
		if g.Name == "" {
			return errors.New("policy: group without a name")
		}
		if len(g.Deployments) == 0 {
			return fmt.Errorf("policy: group %q has no deployments", g.Name)
		}
		if _, dup := cfg.groups[g.Name]; dup {
			return fmt.Errorf("policy: group %q defined twice", g.Name)
		}
		if err := g.Options.Validate(); err != nil {
			return fmt.Errorf("policy: group %q: %w", g.Name, err)
		}
		rg := &group{Group: g, opts: g.Options.WithDefaults()}
		seen := map[string]bool{}
		for j := range g.Deployments {
			d := g.Deployments[j]
			if d.Name == "" || d.Provider == nil {
				return fmt.Errorf("policy: group %q: deployment %d needs a name and a provider", g.Name, j)
			}
			if seen[d.Name] {
				return fmt.Errorf("policy: group %q: deployment %q defined twice", g.Name, d.Name)
			}
			seen[d.Name] = true
			if err := d.Options.Validate(); err != nil {
				return fmt.Errorf("policy: group %q: deployment %q: %w", g.Name, d.Name, err)
			}
			rd := &deployment{Deployment: d, opts: d.Options.WithDefaults(), info: ResolveModel(&d)}
			rd.timeouts = TimeoutOptions{
				TTFT:  cmp.Or(d.Options.Timeouts.TTFT, rg.opts.Timeouts.TTFT),
				Idle:  cmp.Or(d.Options.Timeouts.Idle, rg.opts.Timeouts.Idle),
				Total: cmp.Or(d.Options.Timeouts.Total, rg.opts.Timeouts.Total),
			}
			key := stateKey(&d)
			st := states[key]
			if st == nil {
				st = r.states[key]
			}
			if st == nil || st.brkOpts != rg.opts.Breaker {
				st = r.newState(d.Name, rg.opts.Breaker, st)
			}
			states[key] = st
			rd.state = st
			rg.deps = append(rg.deps, rd)
		}
		cfg.groups[g.Name] = rg
		cfg.names = append(cfg.names, g.Name)
	}
	for name, g := range cfg.groups {
		for _, list := range [][]string{g.opts.Fallbacks, g.opts.ContextWindowFallbacks, g.opts.ContentPolicyFallbacks} {
			for _, f := range list {
				if _, ok := cfg.groups[f]; !ok {
					return fmt.Errorf("policy: group %q: fallback to unknown group %q", name, f)
				}
			}
		}
	}
	r.states = states
	r.cfg.Store(cfg)
	return nil
}

// newState returns a fresh state, keeping old's counters when given.
func (r *Router) newState(name string, bo BreakerOptions, old *depState) *depState {
	st := &depState{name: name, brkOpts: bo}
	if old != nil {
		_, st.reqs, st.toks, st.ttft, st.measured = old.snapshot()
		st.window = old.window
	}
	st.breaker = newBreaker(bo, func() {
		st.mu.Lock()
		st.published = true
		st.mu.Unlock()
		publishBreaker(r.shared, name, r.now().Add(bo.Cooldown))
	}, func() {
		st.mu.Lock()
		was := st.published
		st.published = false
		st.mu.Unlock()
		if was {
			publishBreaker(r.shared, name, time.Time{})
		}
	})
	return st
}

// EstimateTokens estimates the tokens req needs from a context window: its
// prompt plus its MaxTokens.
func EstimateTokens(req *llm.Request) int {
	return catalog.EstimateTokens(req.Messages) + req.MaxTokens
}

// HasGroup reports whether the router serves group.
func (r *Router) HasGroup(name string) bool {
	_, ok := r.cfg.Load().groups[name]
	return ok
}

// Groups returns the names of the groups the router serves, in config order.
func (r *Router) Groups() []string {
	return slices.Clone(r.cfg.Load().names)
}

// Execute runs req against group: it picks a deployment by the group's
// strategy, retries within the group and follows the group's fallback chains.
// emit (may be nil) receives the events of every attempt, synchronously.
// The Outcome is returned even on failure, with every attempt.
func (r *Router) Execute(ctx context.Context, groupName string, req *llm.Request, emit func(Event)) (*Outcome, error) {
	cfg := r.cfg.Load()
	g, ok := cfg.groups[groupName]
	if !ok {
		return &Outcome{Group: groupName}, fmt.Errorf("%w: %q", ErrUnknownGroup, groupName)
	}
	if emit == nil {
		emit = func(Event) {}
	}
	x := &execution{r: r, req: req, emit: emit, out: &Outcome{Group: groupName}, tokens: EstimateTokens(req), needs: needsOf(req)}
	visited := map[string]bool{}
	var lastErr error
	// Groups none of whose deployments can take the request's tools or
	// images are skipped to their fallbacks; when no group of the chain
	// can, the request is invalid (missing_capability).
	var incapable, missingCaps []string
	for {
		visited[g.Name] = true
		var k llm.Kind
		if caps := g.missing(x.needs); caps != nil {
			incapable = append(incapable, g.Name)
			for _, c := range caps {
				if !slices.Contains(missingCaps, c) {
					missingCaps = append(missingCaps, c)
				}
			}
			k = llm.KindBadRequest
		} else {
			res, err := x.runGroup(ctx, g)
			if err == nil {
				res.Attempts, res.Retries, res.Fallbacks = x.out.Attempts, x.out.Retries, x.out.Fallbacks
				res.Group = g.Name
				return res, nil
			}
			lastErr = err
			k = llm.KindOf(err)
			if ctx.Err() != nil || g.opts.action(k) == ActionFail {
				break
			}
		}
		list := g.opts.Fallbacks
		switch k {
		case llm.KindContextWindow:
			list = g.opts.ContextWindowFallbacks
		case llm.KindContentPolicy:
			list = g.opts.ContentPolicyFallbacks
		}
		var next *group
		for _, name := range list {
			if !visited[name] {
				next = cfg.groups[name]
				break
			}
		}
		if next == nil {
			break
		}
		x.out.Fallbacks++
		reason := errText(lastErr)
		if len(incapable) > 0 && incapable[len(incapable)-1] == g.Name {
			reason = errText(missingCapability(g.missing(x.needs), []string{g.Name}))
		}
		cause := lastErr
		if len(incapable) > 0 && incapable[len(incapable)-1] == g.Name {
			cause = missingCapability(g.missing(x.needs), []string{g.Name})
		}
		emit(Event{Type: EventFallback, Group: next.Name, Code: k.String(), Reason: reason, Err: cause})
		g = next
	}
	if lastErr == nil && len(incapable) > 0 {
		// Only a group that could take the request can have a better
		// reason than the missing capability.
		return x.out, missingCapability(missingCaps, incapable)
	}
	return x.out, lastErr
}

// execution is the state of one Execute call.
type execution struct {
	r      *Router
	req    *llm.Request
	emit   func(Event)
	out    *Outcome
	tokens int
	needs  needs // capabilities the request needs beyond text

	streamed bool   // the last failed attempt sent output
	prefix   string // text carried on under MidStreamContinue

	instructed *llm.Request // req with its schema in the system prompt, built once
}

// errStop marks an error that must end the group's retries.
type errStop struct{ error }

func (e errStop) Unwrap() error { return e.error }

// runGroup tries g's deployments, retrying with failsafe-go's retry policy:
// exactly 1+MaxRetries calls at most.
func (x *execution) runGroup(ctx context.Context, g *group) (*Outcome, error) {
	excluded := map[*deployment]bool{}
	var lastErr error
	var delay time.Duration
	maxRetries := max(g.opts.Retry.MaxRetries, 0)
	rp := retrypolicy.NewBuilder[*Outcome]().
		HandleIf(func(_ *Outcome, err error) bool { return err != nil }).
		AbortIf(func(_ *Outcome, err error) bool {
			var s errStop
			return errors.As(err, &s)
		}).
		WithMaxRetries(maxRetries).
		WithDelayFunc(func(failsafe.ExecutionAttempt[*Outcome]) time.Duration { return delay }).
		ReturnLastFailure().
		Build()
	res, err := failsafe.With(rp).WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[*Outcome]) (*Outcome, error) {
		actx := exec.Context()
		d, err := x.pick(actx, g, excluded, lastErr)
		if err != nil {
			return nil, errStop{err}
		}
		if exec.Attempts() > 1 {
			x.out.Retries++
			x.emit(Event{Type: EventRetry, Group: g.Name, Deployment: d.Name, Code: llm.KindOf(lastErr).String(), Reason: errText(lastErr), Err: lastErr})
		}
		res, err := x.attempt(actx, g, d)
		if err == nil {
			return res, nil
		}
		lastErr = err
		k := llm.KindOf(err)
		switch g.opts.action(k) {
		case ActionFail:
			return nil, errStop{err}
		case ActionFallback:
			excluded[d] = true
			if k == llm.KindContextWindow || k == llm.KindContentPolicy {
				return nil, errStop{err} // straight to that kind's fallbacks
			}
		}
		if ra := llm.RetryAfterOf(err); ra > 0 {
			d.state.cool(x.r.now().Add(ra))
		}
		if ctx.Err() != nil {
			return nil, errStop{err}
		}
		delay = backoff(g.opts.Retry, exec.Attempts())
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(delay).After(dl) {
			return nil, errStop{err} // the wait would pass the deadline: fail fast
		}
		return nil, err
	})
	if err != nil {
		if s, ok := errors.AsType[errStop](err); ok {
			err = s.error
		}
		_, classified := errors.AsType[*llm.Error](err)
		if !classified && lastErr != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			// Keep the provider's reason when the deadline cut a wait short.
			err = fmt.Errorf("%w (last attempt: %w)", err, lastErr)
		}
	}
	return res, err
}

// backoff returns the delay after the n-th attempt (1-based).
func backoff(o RetryOptions, n int) time.Duration {
	d := o.Backoff.Initial
	for i := 1; i < n && d < o.Backoff.Max; i++ {
		d *= 2
	}
	d = min(d, o.Backoff.Max)
	if o.Jitter > 0 {
		f := 1 + o.Jitter*(2*rand.Float64()-1)
		d = time.Duration(float64(d) * f)
	}
	return max(d, 0)
}

// pick chooses the next deployment, waiting for one to become free within
// ctx's deadline. It fails with a context-window error when the prompt fits
// no deployment, and with lastErr (or rate_limited/unavailable) when none
// frees up in time.
func (x *execution) pick(ctx context.Context, g *group, excluded map[*deployment]bool, lastErr error) (*deployment, error) {
	for {
		now := x.r.now()
		fits, limited, broken := false, false, false
		var earliest time.Time
		for _, d := range x.r.order(g) {
			if excluded[d] || !d.serves(x.needs) {
				continue
			}
			if d.info.ContextWindow > 0 && x.tokens > d.info.ContextWindow {
				continue
			}
			fits = true
			useShared := x.r.shared != nil && (d.opts.RPM > 0 || d.opts.TPM > 0)
			ok, freeAt := d.state.check(now, &d.opts, x.tokens, x.r.shared, true)
			if ok && useShared {
				// The fleet's counters decide; local ones only when the store is gone.
				sok, err := x.r.shared.Reserve(ctx, d.Name, x.tokens, d.opts.RPM, d.opts.TPM)
				if err == nil && !sok {
					ok, freeAt = false, now.Truncate(time.Minute).Add(time.Minute)
				}
			}
			if ok && d.state.breaker != nil && !d.state.breaker.TryAcquirePermit() {
				broken = true
				continue
			}
			if !ok && d.state.brokenAt(now, x.r.shared) {
				broken = true
				continue
			}
			if ok {
				d.state.acquire(now, x.tokens)
				return d, nil
			}
			limited = true
			if freeAt.IsZero() {
				freeAt = now.Add(5 * time.Millisecond) // a concurrency slot: poll
			}
			if earliest.IsZero() || freeAt.Before(earliest) {
				earliest = freeAt
			}
		}
		if !fits {
			if lastErr != nil && len(excluded) > 0 {
				return nil, lastErr
			}
			return nil, &llm.Error{Kind: llm.KindContextWindow, Message: fmt.Sprintf("the prompt (about %d tokens) fits no deployment of group %q", x.tokens, g.Name)}
		}
		if !limited {
			// Deployments behind an open breaker are not waited for: the
			// group is exhausted and its fallbacks take over.
			msg := "no deployment left"
			if broken {
				msg = "every deployment's circuit breaker is open"
			}
			return nil, cmp.Or(lastErr, error(&llm.Error{Kind: llm.KindUnavailable, Message: msg}))
		}
		wait := earliest.Sub(now)
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, &llm.Error{Kind: llm.KindRateLimited, RetryAfter: wait, Message: fmt.Sprintf("every deployment of group %q is at its limit or unavailable", g.Name)}
		}
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, cmp.Or(lastErr, error(&llm.Error{Kind: llm.KindOf(ctx.Err()), Err: ctx.Err()}))
		case <-t.C:
		}
	}
}

// order returns g's deployments in the order its strategy prefers them.
func (r *Router) order(g *group) []*deployment {
	ds := slices.Clone(g.deps)
	switch g.opts.Strategy {
	case StrategyWeighted:
		// Efraimidis-Spirakis: a weighted random permutation.
		keys := make(map[*deployment]float64, len(ds))
		for _, d := range ds {
			keys[d] = -rand.ExpFloat64() / float64(max(d.opts.Weight, 1))
		}
		slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(keys[b], keys[a]) })
	case StrategyLeastBusy:
		in := map[*deployment]int{}
		for _, d := range ds {
			in[d], _, _, _, _ = d.state.snapshot()
		}
		slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(in[a], in[b]) })
	case StrategyLowestLatency:
		lat := map[*deployment]time.Duration{}
		for _, d := range ds {
			_, _, _, t, measured := d.state.snapshot()
			if measured {
				lat[d] = t
			} else {
				lat[d] = -1 // measure the unknown first
			}
		}
		slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(lat[a], lat[b]) })
	case StrategyUsageBased:
		use := map[*deployment]float64{}
		for _, d := range ds {
			_, reqs, toks, _, _ := d.state.snapshot()
			var u float64
			if d.opts.RPM > 0 {
				u = max(u, float64(reqs)/float64(d.opts.RPM))
			}
			if d.opts.TPM > 0 {
				u = max(u, float64(toks)/float64(d.opts.TPM))
			}
			if d.opts.RPM == 0 && d.opts.TPM == 0 {
				u = float64(toks) / 1e9 // unlimited: least used first
			}
			use[d] = u
		}
		slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(use[a], use[b]) })
	default:
		slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(a.opts.Priority, b.opts.Priority) })
	}
	return ds
}

// attempt makes one call to d and records it in the outcome.
func (x *execution) attempt(ctx context.Context, g *group, d *deployment) (*Outcome, error) {
	start := time.Now()
	cont := g.opts.MidStream == MidStreamContinue && x.prefix != "" && textOnly(x.req)
	if x.streamed && !cont {
		x.emit(Event{Type: EventRestart, Group: g.Name, Deployment: d.Name})
		x.prefix = ""
	}
	res, sent, err := x.call(ctx, g, d, cont)
	d.state.release()
	d.state.record(err)
	a := Attempt{Group: g.Name, Deployment: d.Name, Model: d.Model, Provider: d.info.Provider, Err: err, Duration: time.Since(start)}
	if err != nil {
		a.Code = llm.KindOf(err).String()
		x.streamed = x.streamed && cont || sent
	}
	x.out.Attempts = append(x.out.Attempts, a)
	return res, err
}

func textOnly(req *llm.Request) bool {
	rf := req.ResponseFormat
	return len(req.Tools) == 0 && (rf == nil || rf.Type == "" || rf.Type == llm.FormatText)
}

// watchdog cancels an attempt that waits too long for its first or next chunk.
type watchdog struct {
	t     *time.Timer
	what  atomic.Pointer[string] // what the armed timeout is for
	fired atomic.Value           // string: what timed out
}

// call makes one streamed call under the attempt's timeouts; sent reports
// whether any output was emitted.
func (x *execution) call(ctx context.Context, g *group, d *deployment, cont bool) (out *Outcome, sent bool, err error) {
	to := d.timeouts
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if to.Total > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, to.Total)
		defer c2()
	}
	wd := &watchdog{}
	// One timer per attempt, reset on every chunk: arming runs once per
	// chunk, so it must not allocate.
	arm := func(dur time.Duration, what *string) {
		if dur <= 0 {
			if wd.t != nil {
				wd.t.Stop()
			}
			return
		}
		wd.what.Store(what)
		if wd.t == nil {
			wd.t = time.AfterFunc(dur, func() { wd.fired.Store(*wd.what.Load()); cancel() })
			return
		}
		wd.t.Reset(dur)
	}
	ttftMsg := fmt.Sprintf("no first token within %v", to.TTFT)
	idleMsg := fmt.Sprintf("no chunk for %v", to.Idle)
	defer func() {
		if wd.t != nil {
			wd.t.Stop()
		}
	}()
	timeoutErr := func(err error) error {
		if what, ok := wd.fired.Load().(string); ok {
			return &llm.Error{Kind: llm.KindTimeout, MidStream: sent, Message: what, Err: err}
		}
		if parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &llm.Error{Kind: llm.KindTimeout, MidStream: sent, Message: "attempt exceeded its total timeout", Err: err}
		}
		return err
	}

	call := *x.requestFor(d)
	call.Model, call.MaxOutput = d.Model, d.info.MaxOutput
	if cont {
		call.Messages = append(slices.Clone(call.Messages), llm.Message{Role: llm.RoleAssistant, Content: x.prefix})
	}
	start := time.Now()
	arm(to.TTFT, &ttftMsg)
	s, err := d.Provider.Stream(ctx, &call)
	if err != nil {
		return nil, false, timeoutErr(err)
	}
	defer s.Close()
	x.emit(Event{Type: EventStart, Group: g.Name, Deployment: d.Name})
	out = &Outcome{Deployment: d.Name, Model: d.Model, Provider: d.info.Provider}
	var text strings.Builder
	tools := toolAssembler{}
	finished := false
	first := true
	for s.Next() {
		c := s.Current()
		if first {
			first = false
			out.TTFT = time.Since(start)
			d.state.observe(out.TTFT)
		}
		arm(to.Idle, &idleMsg)
		if c.Delta != "" {
			sent = true
			text.WriteString(c.Delta)
			x.emit(Event{Type: EventChunk, Group: g.Name, Deployment: d.Name, Delta: c.Delta})
		}
		for i := range c.ToolCalls {
			sent = true
			tools.add(c.ToolCalls[i])
			x.emit(Event{Type: EventToolCall, Group: g.Name, Deployment: d.Name, ToolCall: &c.ToolCalls[i]})
		}
		if c.Usage != nil {
			out.Usage = *c.Usage
		}
		if c.FinishReason != "" {
			out.FinishReason = c.FinishReason
			finished = true
		}
	}
	if err := s.Err(); err != nil {
		if cont || sent {
			x.prefix += text.String()
		}
		return nil, sent, timeoutErr(err)
	}
	if !finished {
		if cont || sent {
			x.prefix += text.String()
		}
		return nil, sent, &llm.Error{Kind: llm.KindUnavailable, MidStream: sent, Message: "stream ended without an end marker"}
	}
	out.Text = text.String()
	if cont {
		out.Text = x.prefix + out.Text
	}
	out.ToolCalls = tools.calls()
	out.CostUSD = catalog.Cost(d.info, out.Usage)
	return out, sent, nil
}

// requestFor returns the request as d is sent it. This is the one place
// where the request differs per deployment: a json_schema request goes as is
// to a deployment with native structured output, and with the schema put
// into the system prompt (structured.WithInstruction, the response format
// kept) to one whose model does not take it (see ResolveModel). Either way
// the worker validates the answer.
func (x *execution) requestFor(d *deployment) *llm.Request {
	rf := x.req.ResponseFormat
	if d.info.JSONSchema || rf == nil || rf.Type != llm.FormatJSONSchema {
		return x.req
	}
	if x.instructed == nil {
		x.instructed = structured.WithInstruction(x.req)
	}
	return x.instructed
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// toolAssembler joins streamed tool-call fragments into whole calls.
type toolAssembler struct {
	order []int
	byIdx map[int]*llm.ToolCall
}

func (a *toolAssembler) add(d llm.ToolCallDelta) {
	if a.byIdx == nil {
		a.byIdx = map[int]*llm.ToolCall{}
	}
	tc, ok := a.byIdx[d.Index]
	if !ok {
		tc = &llm.ToolCall{}
		a.byIdx[d.Index] = tc
		a.order = append(a.order, d.Index)
	}
	if d.ID != "" {
		tc.ID = d.ID
	}
	if d.Name != "" {
		tc.Name = d.Name
	}
	tc.Arguments += d.Arguments
}

func (a *toolAssembler) calls() []llm.ToolCall {
	if len(a.order) == 0 {
		return nil
	}
	out := make([]llm.ToolCall, 0, len(a.order))
	for _, i := range a.order {
		out = append(out, *a.byIdx[i])
	}
	return out
}
