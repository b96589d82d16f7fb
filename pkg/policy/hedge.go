package policy

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"

	"github.com/switchyard/switchyard/pkg/llm"
)

// HedgeOptions turn on hedged first tokens for a group's interactive calls
// (Call.Priority PriorityInteractive), with failsafe-go's hedge policy: when a call's first
// token is late, a second attempt starts on another deployment of the
// group, and the first of the two to produce a token wins; the other is
// cancelled. Nothing of either is emitted before there is a winner, so a
// caller's events never mix two attempts. A hedge takes a permit of the
// group's retry budget (RetryBudgetOptions), like a retry: a hedge the
// budget refuses does not start.
//
// Late is either a fixed Delay, or (the default) the Percentile of the
// primary deployment's recent times to first token on this router (its
// last 64 first tokens), at least MinDelay.
type HedgeOptions struct {
	// Delay, when set, is how long a call waits for its first token before
	// a hedge starts; it excludes Percentile and MinDelay.
	Delay time.Duration `yaml:"delay"`
	// Percentile (0 < p < 100; default 95): a hedge starts when the first
	// token is later than this percentile of the deployment's recent times
	// to first token. Until the deployment has 10 of them, MinDelay is the
	// delay, and a group without MinDelay does not hedge.
	Percentile float64 `yaml:"percentile"`
	// MinDelay is the shortest delay the percentile may give (default 0).
	MinDelay time.Duration `yaml:"min_delay"`
	// MaxHedges is how many hedges one try may start (default 1, at most
	// 3), one delay apart, each on a deployment not yet in the race.
	MaxHedges int `yaml:"max_hedges"`
}

// Rolling window of a deployment's times to first token.
const (
	ttftWindow     = 64 // first tokens kept per deployment
	ttftMinSamples = 10 // before this many, no percentile
	maxHedgesLimit = 3
)

// WithDefaults returns o with zero fields set to their defaults.
func (o HedgeOptions) WithDefaults() HedgeOptions {
	if o.Delay == 0 {
		o.Percentile = cmp.Or(o.Percentile, 95)
	}
	o.MaxHedges = cmp.Or(o.MaxHedges, 1)
	return o
}

func (o *HedgeOptions) validate() error {
	if o == nil {
		return nil
	}
	switch {
	case o.Delay < 0:
		return optionError("hedge.delay", "%v < 0", o.Delay)
	case o.MinDelay < 0:
		return optionError("hedge.min_delay", "%v < 0", o.MinDelay)
	case o.Delay > 0 && (o.Percentile != 0 || o.MinDelay != 0):
		return optionError("hedge.delay", "a fixed delay excludes percentile and min_delay")
	case o.Percentile < 0 || o.Percentile >= 100:
		return optionError("hedge.percentile", "%v not in (0, 100)", o.Percentile)
	case o.MaxHedges < 0 || o.MaxHedges > maxHedgesLimit:
		return optionError("hedge.max_hedges", "%d not in [1, %d]", o.MaxHedges, maxHedgesLimit)
	}
	return nil
}

// delayFor is how long a call on d waits for its first token before a
// hedge starts; -1: it does not hedge.
func (o *HedgeOptions) delayFor(d *deployment) time.Duration {
	if o.Delay > 0 {
		return o.Delay
	}
	if p, ok := d.state.ttftPercentile(o.Percentile); ok {
		// At least a millisecond: a deployment whose first tokens come at
		// once (a mock) would otherwise be hedged on every call.
		return max(p, o.MinDelay, time.Millisecond)
	}
	if o.MinDelay > 0 {
		return o.MinDelay
	}
	return -1
}

// ttftPercentile is the p-th percentile (nearest rank) of s's recent times
// to first token; ok is false while it has fewer than ttftMinSamples.
func (s *depState) ttftPercentile(p float64) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ttfts.percentile(p)
}

// ttftSamples are a deployment's last ttftWindow times to first token,
// kept twice: a ring in arrival order, to know which one a new one
// replaces, and sorted, so that a percentile (asked by every interactive
// call) is one lookup and a new first token costs two binary searches and
// a shift of at most ttftWindow values, with no sort and no allocation.
type ttftSamples struct {
	ring   [ttftWindow]time.Duration
	sorted []time.Duration // the ring's values, ascending
	n      int             // first tokens observed
}

func (w *ttftSamples) add(d time.Duration) {
	if w.sorted == nil {
		w.sorted = make([]time.Duration, 0, ttftWindow)
	}
	slot := &w.ring[w.n%ttftWindow]
	if w.n >= ttftWindow {
		i, _ := slices.BinarySearch(w.sorted, *slot)
		w.sorted = slices.Delete(w.sorted, i, i+1)
	}
	*slot = d
	i, _ := slices.BinarySearch(w.sorted, d)
	w.sorted = slices.Insert(w.sorted, i, d)
	w.n++
}

func (w *ttftSamples) percentile(p float64) (time.Duration, bool) {
	n := len(w.sorted)
	if n < ttftMinSamples {
		return 0, false
	}
	i := int(math.Ceil(p/100*float64(n))) - 1
	return w.sorted[min(max(i, 0), n-1)], true
}

// clone returns a copy of w that shares nothing with it.
func (w *ttftSamples) clone() ttftSamples {
	c := *w
	c.sorted = append(make([]time.Duration, 0, ttftWindow), w.sorted...)
	return c
}

// errLostRace is the cause of the cancellation of an attempt whose race
// another attempt won.
var errLostRace = errors.New("policy: another attempt of the hedge produced the first token")

// errNoHedge ends a hedge that did not start: no other deployment could
// take it now, or the race was decided already.
var errNoHedge = errors.New("policy: no hedge")

// raceOver marks a racer's end that ends the race: the winner's, or the
// last one's when nobody won.
type raceOver struct{}

func (raceOver) Error() string { return "policy: the race is over" }

// race is one try of a group whose first token may be hedged: the primary
// attempt, on the deployment the retry admitted, and the hedges the hedge
// policy starts beside it. Each racer runs on a fork of the request's
// execution, so that nothing it does reaches the request until it wins;
// its events wait in the racer until its first token, and only the
// winner's go on, through events, to the calling goroutine.
type race struct {
	x       *execution // the request's; only the calling goroutine changes it
	g       *group
	opts    HedgeOptions
	delay   time.Duration
	primary *deployment
	permit  *permit
	events  chan Event // the winner's events, to the calling goroutine

	wg       sync.WaitGroup // racers started (the primary, each hedge from onHedge)
	mu       sync.Mutex
	excluded map[*deployment]bool // the run's, and every racer's deployment
	racers   []*racer             // in start order
	running  int                  // racers started and not ended
	winner   *racer
	failed   *racer // the last that failed on its own
	hedges   int    // hedges that called a deployment
	denied   int    // hedges the budget refused
}

// racer is one attempt of a race.
type racer struct {
	rc     *race
	x      *execution // its fork of the request's execution
	d      *deployment
	p      *permit
	hedge  bool
	cancel context.CancelCauseFunc
	ctx    context.Context

	buf      []Event // its events before it won
	won      bool    // set by its own goroutine once it claimed the race
	streamed int     // bytes of text it produced, for a cancelled one's cost

	res  *Outcome
	err  error
	lost bool // cancelled (or discarded) because another won
}

// hedgeFor returns the race settings of a try of g on d, or nil when the
// try is not hedged: not an interactive call, a group without hedge, one
// deployment, or no delay known yet.
func (x *execution) hedgeFor(g *group, d *deployment) (*HedgeOptions, time.Duration) {
	h := g.opts.Hedge
	if !x.interactive || h == nil || len(g.deps) < 2 {
		return nil, 0
	}
	delay := h.delayFor(d)
	if delay < 0 {
		return nil, 0
	}
	return h, delay
}

// hedged runs one try of the group as a race (see race): the calling
// goroutine emits the winner's events as they come and waits for every
// racer to end, so that the attempts it records are all of them. It
// returns the winner's outcome, else the last failure and its deployment.
func (run *groupRun) hedged(ctx context.Context, d *deployment, p *permit, h *HedgeOptions, delay time.Duration) (*Outcome, *deployment, error) {
	rc := &race{x: run.x, g: run.g, opts: *h, delay: delay, primary: d, permit: p, events: make(chan Event),
		excluded: map[*deployment]bool{d: true}, running: 1}
	for e := range run.excluded {
		rc.excluded[e] = true
	}
	rc.wg.Add(1) // the primary
	done := make(chan struct{})
	var perr error
	go func() {
		defer close(done)
		_, perr = failsafe.With(rc.policy()).WithContext(ctx).GetWithExecution(rc.run)
	}()
	for pumping := true; pumping; {
		select {
		case ev := <-rc.events:
			run.x.emit(ev)
		case <-done:
			pumping = false
		}
	}
	// A race cut short by ctx returns before its racers end; they end
	// with ctx, and what they still emit is dropped.
	go func() {
		rc.wg.Wait()
		close(rc.events)
	}()
	for range rc.events {
	}
	return rc.settle(perr)
}

// policy is the race's failsafe-go hedge policy: a hedge after the delay
// (up to MaxHedges), under the group's retry budget; the race ends with
// the winner's end, or with the last racer's when nobody won.
func (rc *race) policy() hedgepolicy.HedgePolicy[*Outcome] {
	b := hedgepolicy.NewBuilderWithDelay[*Outcome](rc.delay).
		WithMaxHedges(rc.opts.MaxHedges).
		CancelIf(func(_ *Outcome, err error) bool { return err == nil || errors.As(err, new(raceOver)) }).
		OnHedge(func(failsafe.ExecutionEvent[*Outcome]) {
			rc.mu.Lock()
			rc.running++
			rc.wg.Add(1)
			rc.mu.Unlock()
		})
	if bi, ok := rc.g.budget.(budgetInternals); ok {
		b = b.WithBudget(hedgeBudget{budgetInternals: bi, rc: rc})
	}
	return b.Build()
}

// run is one racer: the primary, or a hedge on a deployment not yet in the
// race. Its error is raceOver when its end ends the race.
func (rc *race) run(exec failsafe.Execution[*Outcome]) (*Outcome, error) {
	defer rc.wg.Done()
	r := rc.join(exec)
	if r == nil {
		return nil, rc.leave(nil)
	}
	defer r.cancel(nil)
	r.res, r.err = r.x.attempt(r.ctx, rc.g, r.d, r.p)
	return r.res, rc.leave(r)
}

// join starts a racer: the primary on its admitted deployment; a hedge on
// the first deployment of the group's order that can take the call now,
// not waiting for one (nil: the hedge does not happen).
func (rc *race) join(exec failsafe.Execution[*Outcome]) *racer {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r := &racer{rc: rc, d: rc.primary, p: rc.permit, hedge: exec.IsHedge()}
	if r.hedge {
		if rc.winner != nil || exec.Context().Err() != nil {
			return nil
		}
		s := rc.x.scan(exec.Context(), rc.g, rc.excluded, rc.x.r.now())
		if s.chosen == nil {
			return nil
		}
		r.d, r.p = s.chosen, s.permit
		rc.excluded[r.d] = true
		rc.hedges++
	}
	r.x = rc.x.fork(r.emit)
	r.ctx, r.cancel = context.WithCancelCause(exec.Context())
	rc.racers = append(rc.racers, r)
	return r
}

// claim makes r the winner unless another is; the others are cancelled.
func (rc *race) claim(r *racer) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.claimLocked(r)
}

func (rc *race) claimLocked(r *racer) bool {
	if rc.winner != nil {
		return rc.winner == r
	}
	rc.winner = r
	for _, o := range rc.racers {
		if o != r {
			o.cancel(errLostRace)
		}
	}
	return true
}

// leave ends racer r (nil: a hedge that did not start) and says whether
// the race is over: r won, or nobody did and nobody else runs.
func (rc *race) leave(r *racer) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.running--
	if r != nil {
		rc.settleLocked(r)
	}
	switch {
	case r != nil && rc.winner == r && r.err == nil:
		return nil
	case r != nil && rc.winner == r, rc.winner == nil && rc.running == 0:
		return raceOver{}
	case r == nil:
		return errNoHedge
	case r.err == nil:
		return errLostRace
	}
	return r.err
}

// settleLocked records how racer r ended: the winner (a success without
// output wins at its end when nobody won before), a loser (it succeeded
// or was cancelled after another won), or the race's failure so far.
func (rc *race) settleLocked(r *racer) {
	if r.err == nil && rc.winner == nil {
		rc.claimLocked(r)
	}
	switch {
	case rc.winner == r:
	case rc.winner != nil && (r.err == nil || errors.Is(context.Cause(r.ctx), errLostRace)):
		r.lost = true
	default:
		rc.failed = r
	}
}

// emit is a racer's emit: it keeps the racer's events until its first
// token, then claims the race; the winner's events go to the calling
// goroutine, a loser's nowhere.
func (r *racer) emit(ev Event) {
	if ev.Type == EventChunk {
		r.streamed += len(ev.Delta)
	}
	if !r.won {
		if ev.Type != EventChunk && ev.Type != EventToolCall {
			r.buf = append(r.buf, ev)
			return
		}
		if !r.rc.claim(r) {
			return
		}
		r.won = true
		for _, b := range r.buf {
			r.rc.events <- b
		}
		r.buf = nil
	}
	r.rc.events <- ev
}

// settle records the race in the request's execution, once every racer
// ended: each racer's attempt (with, when a hedge called a deployment,
// whether it was a hedge and whether it won or was cancelled, and a
// cancelled one's estimated cost, added to the request's cost), the
// winner's stream state; and returns the winner's outcome, else the last
// failure.
func (rc *race) settle(perr error) (*Outcome, *deployment, error) {
	x := rc.x
	x.out.Hedges += rc.hedges
	x.out.BudgetDenied += rc.denied
	var lostUSD float64
	for _, r := range rc.racers {
		for _, a := range r.x.out.Attempts {
			if rc.hedges > 0 {
				a.Hedge = r.hedge
				switch {
				case r == rc.winner:
					a.Race = RaceWon
				case r.lost:
					a.Race = RaceCancelled
					a.Err = &llm.Error{Kind: llm.KindCancelled, Message: "hedge: cancelled, another attempt's first token came first"}
					a.Code = llm.KindCancelled.String()
					a.CostUSD = x.lostCost(r.d, r.streamed)
					lostUSD += a.CostUSD
				}
			}
			x.out.Attempts = append(x.out.Attempts, a)
		}
	}
	w := rc.winner
	if w == nil {
		w = rc.failed
	}
	if w == nil {
		return nil, rc.primary, cmp.Or(perr, error(&llm.Error{Kind: llm.KindUnavailable, Message: "hedge: no attempt ended"}))
	}
	x.streamed, x.streamErr, x.prefix = w.x.streamed, w.x.streamErr, w.x.prefix
	// On the request's outcome, not the winner's: a winner may still fail
	// after its first token, and what the cancelled ones cost stands.
	x.out.CostUSD += lostUSD
	return w.res, w.d, w.err
}

// lostCost estimates what a cancelled attempt on d cost: the request's
// estimated prompt at d's input price, and the text it streamed before it
// was cancelled (a token per 4 bytes) at d's output price; 0 when d's
// price is unknown. An estimate: a cancelled stream reports no usage.
func (x *execution) lostCost(d *deployment, streamed int) float64 {
	if math.IsInf(d.price, 1) {
		return 0
	}
	return (float64(x.prompt)*d.info.InputPerMTok + float64((streamed+3)/4)*d.info.OutputPerMTok) / 1e6
}

// fork returns a copy of x for one racer: the same request and settings,
// its own emit, outcome and stream state.
func (x *execution) fork(emit func(Event)) *execution {
	f := *x
	f.emit = emit
	f.out = &Outcome{}
	return &f
}

// budgetInternals are the methods of failsafe-go's budget that its
// policies call (its internal.Budget).
type budgetInternals interface {
	budget.Budget
	RecordExecution()
	ReleaseExecution()
	TryAcquirePermit() bool
	ReleasePermit()
	OnBudgetExceeded(budget.ExecutionType, failsafe.ExecutionInfo)
}

// hedgeBudget lends the group's retry budget to a race's hedge policy: a
// hedge takes a permit as a retry does (and counts as an execution while
// it runs), but the request's run was counted once already, by the retry
// policy around the race, so the hedge policy does not count it again.
type hedgeBudget struct {
	budgetInternals
	rc *race
}

func (hedgeBudget) RecordExecution()  {}
func (hedgeBudget) ReleaseExecution() {}

func (b hedgeBudget) OnBudgetExceeded(t budget.ExecutionType, info failsafe.ExecutionInfo) {
	b.rc.mu.Lock()
	if b.rc.winner == nil {
		b.rc.denied++
	}
	b.rc.mu.Unlock()
	b.budgetInternals.OnBudgetExceeded(t, info)
}
