package offload

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
	"github.com/switchyard/switchyard/pkg/policy"
)

// bucketState is what one tick read of a bucket.
type bucketState struct {
	tenant  string
	kv      jetstream.KeyValue
	renewed time.Time        // when this engine last took or renewed the lease
	now     time.Time        // when the keys were listed: what is due is judged at it
	lines   map[string]*Line // by key
	batches []*batchEntry
}

type batchEntry struct {
	*Batch
	rev uint64
}

// work advances a bucket's batches in flight, then sends what waits.
func (e *Engine) work(ctx context.Context, tenant string, kv jetstream.KeyValue) error {
	st, err := e.read(ctx, tenant, kv)
	if err != nil {
		return err
	}
	sent := map[string]bool{} // line keys in a batch
	var errs []error
	for _, b := range st.batches {
		for _, job := range b.Jobs {
			sent[lineKey(b.Group, job)] = true
		}
		if err := e.advance(ctx, st, b); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b, err))
		}
	}
	var waiting []*Line
	for key, l := range st.lines {
		if !sent[key] {
			waiting = append(waiting, l)
		}
	}
	errs = append(errs, e.collect(ctx, st, waiting))
	return errors.Join(errs...)
}

// read lists the bucket's lines and batches.
func (e *Engine) read(ctx context.Context, tenant string, kv jetstream.KeyValue) (*bucketState, error) {
	now := e.cfg.Now()
	keys, err := listKeys(ctx, kv, linePrefix+">", batchPrefix+">")
	if err != nil {
		return nil, err
	}
	st := &bucketState{tenant: tenant, kv: kv, lines: map[string]*Line{}, renewed: now, now: now}
	for _, k := range keys {
		if strings.HasPrefix(k, batchPrefix) {
			b, err := getBatch(ctx, kv, k)
			if err != nil {
				return nil, err
			}
			if b != nil {
				st.batches = append(st.batches, b)
			}
			continue
		}
		l, err := e.line(ctx, st, k)
		if err != nil {
			return nil, err
		}
		if l != nil {
			st.lines[k] = l
		}
	}
	// The memo keeps only lines still in the bucket.
	e.mu.Lock()
	prefix := kv.Bucket() + "/"
	for k := range e.lines {
		if strings.HasPrefix(k, prefix) && st.lines[strings.TrimPrefix(k, prefix)] == nil {
			delete(e.lines, k)
		}
	}
	e.mu.Unlock()
	slices.SortFunc(st.batches, func(a, b *batchEntry) int { return a.Created.Compare(b.Created) })
	return st, nil
}

func getBatch(ctx context.Context, kv jetstream.KeyValue, key string) (*batchEntry, error) {
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var b Batch
	if err := json.Unmarshal(entry.Value(), &b); err != nil {
		return nil, fmt.Errorf("offload: %s: %w", key, err)
	}
	return &batchEntry{Batch: &b, rev: entry.Revision()}, nil
}

// line returns the line of key (nil when it is gone), read once per
// engine: a line changes once, when a batch claims it, and what reads it
// to send or answer a batch reads it again (claimed).
func (e *Engine) line(ctx context.Context, st *bucketState, key string) (*Line, error) {
	e.mu.Lock()
	l, ok := e.lines[st.kv.Bucket()+"/"+key]
	e.mu.Unlock()
	if ok {
		return l, nil
	}
	return e.reread(ctx, st, key)
}

// reread reads the line of key from the bucket (nil when it is gone).
func (e *Engine) reread(ctx context.Context, st *bucketState, key string) (*Line, error) {
	memo := st.kv.Bucket() + "/" + key
	entry, err := st.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		e.forget(st, key)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l := &Line{}
	if err := json.Unmarshal(entry.Value(), l); err != nil {
		return nil, fmt.Errorf("offload: %s: %w", key, err)
	}
	l.Tenant, l.rev = st.tenant, entry.Revision()
	if g, job, ok := parseLineKey(key); ok {
		l.Group, l.Job = g, job
	}
	e.mu.Lock()
	e.lines[memo] = l
	e.mu.Unlock()
	return l, nil
}

// forget drops what this engine read of the line of key.
func (e *Engine) forget(st *bucketState, key string) {
	delete(st.lines, key)
	e.mu.Lock()
	delete(e.lines, st.kv.Bucket()+"/"+key)
	e.mu.Unlock()
}

// claim claims each of ls for batch ref, with compare-and-set on the
// revision it was read at, and returns those it claimed: a line another
// worker claimed first (it collected the same lines under a lease both
// believed theirs) is left to that worker's batch.
func (e *Engine) claim(ctx context.Context, st *bucketState, ref string, ls []*Line) ([]*Line, error) {
	var won []*Line
	for _, l := range ls {
		c := *l
		c.Batch = ref
		data, err := json.Marshal(&c)
		if err != nil {
			return won, err
		}
		key := lineKey(l.Group, l.Job)
		rev, err := st.kv.Update(ctx, key, data, l.rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
			e.forget(st, key)
			continue
		}
		if isFull(err) && len(won) > 0 {
			// No room for more claims: the batch goes with those it has,
			// and its answers make room for the rest.
			return won, nil
		}
		if err != nil {
			return won, err
		}
		l.Batch, l.rev = ref, rev
		won = append(won, l)
	}
	return won, nil
}

// claimed reads b's lines again and returns, by index in b.Jobs, those b
// claimed (nil: answered already, or never claimed by b).
func (e *Engine) claimed(ctx context.Context, st *bucketState, b *Batch) ([]*Line, error) {
	out := make([]*Line, len(b.Jobs))
	for i, job := range b.Jobs {
		key := lineKey(b.Group, job)
		l, err := e.reread(ctx, st, key)
		if err != nil {
			return nil, err
		}
		if l == nil {
			continue
		}
		st.lines[key] = l
		if l.Batch == b.Ref {
			out[i] = l
		}
	}
	return out, nil
}

// done removes a line that is answered or sent back live.
func (e *Engine) done(ctx context.Context, st *bucketState, l *Line) error {
	key := lineKey(l.Group, l.Job)
	e.forget(st, key)
	return st.kv.Delete(ctx, key)
}

// errLeaseLost stops the work of a bucket whose lease went to another
// worker while this one worked it.
var errLeaseLost = errors.New("offload: the bucket's lease was lost")

// renew renews the bucket's lease when a third of it has passed, so that a
// long tick (a large batch answered, many lines run live) keeps it; it
// fails when another worker has it now.
func (e *Engine) renew(ctx context.Context, st *bucketState) error {
	now := e.cfg.Now()
	if now.Sub(st.renewed) < e.cfg.Lease/3 {
		return nil
	}
	if !e.hold(ctx, st.kv) {
		return errLeaseLost
	}
	st.renewed = now
	return nil
}

// fallback is a line to run live, and why.
type fallback struct {
	l   *Line
	why string
}

// live runs lines live (Host.Live), LiveConcurrency at a time, and removes
// each that was answered. The lines of a live call that failed stay for a
// later tick.
func (e *Engine) live(ctx context.Context, st *bucketState, ref string, fs []fallback) error {
	var g errgroup.Group
	g.SetLimit(e.cfg.LiveConcurrency)
	var mu sync.Mutex
	for _, f := range fs {
		if err := e.renew(ctx, st); err != nil {
			_ = g.Wait()
			return err
		}
		g.Go(func() error {
			e.log.Info("offload: job runs live", slog.String("job", f.l.Job), slog.String("group", f.l.Group), slog.String("batch", ref), slog.String("why", f.why))
			if err := e.host.Live(ctx, f.l, f.why); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			return e.done(ctx, st, f.l)
		})
	}
	return g.Wait()
}

// collect answers the cancelled waiting lines and sends the others, per
// group, in batches: those whose oldest line waited the group's after, or
// that are full.
func (e *Engine) collect(ctx context.Context, st *bucketState, waiting []*Line) error {
	byGroup := map[string][]*Line{}
	for _, l := range waiting {
		byGroup[l.Group] = append(byGroup[l.Group], l)
	}
	var errs []error
	for group, ls := range byGroup {
		if err := e.collectGroup(ctx, st, group, ls); err != nil {
			errs = append(errs, fmt.Errorf("group %s: %w", group, err))
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) collectGroup(ctx context.Context, st *bucketState, group string, ls []*Line) error {
	t, ok := e.targets(st.tenant, group)
	ls = slices.DeleteFunc(ls, func(l *Line) bool {
		if !e.host.Cancelled(l) {
			return false
		}
		if err := e.host.Answer(ctx, l, &Answer{Cancelled: true, Target: t}); err == nil {
			_ = e.done(ctx, st, l)
		}
		return true
	})
	if !ok {
		fs := make([]fallback, len(ls))
		for i, l := range ls {
			fs[i] = fallback{l, "the group no longer sends jobs to a vendor batch API"}
		}
		return e.live(ctx, st, "", fs)
	}
	slices.SortFunc(ls, func(a, b *Line) int { return cmp.Or(a.Added.Compare(b.Added), cmp.Compare(a.Seq, b.Seq)) })
	maxLines, maxBytes := t.Batcher.BatchLimits()
	maxLines = min(cmp0(maxLines, e.cfg.MaxLines), e.cfg.MaxLines)
	now := st.now
	for len(ls) > 0 {
		n, size := 0, 0
		for n < len(ls) && n < maxLines && (maxBytes <= 0 || size+len(ls[n].Data) <= maxBytes*9/10) {
			size += len(ls[n].Data)
			n++
		}
		n = max(n, 1)
		full := n < len(ls) || n == maxLines
		if !full && now.Sub(ls[0].Added) < t.Options.After {
			return nil
		}
		if err := e.send(ctx, st, t, ls[:n]); err != nil {
			return err
		}
		ls = ls[n:]
	}
	return nil
}

func cmp0(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// send records a new batch of ls, claims its lines, then submits it. The
// record is written first, so that a line claimed is always listed by its
// batch's record; lines another worker claimed first are dropped from it.
func (e *Engine) send(ctx context.Context, st *bucketState, t policy.BatchTarget, ls []*Line) error {
	b := &Batch{Ref: newRef(), Group: t.Group, Deployment: t.Deployment, Model: t.Model, State: stateSubmitting, Created: e.cfg.Now()}
	for _, l := range ls {
		b.Jobs = append(b.Jobs, l.Job)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	rev, err := st.kv.Create(ctx, batchKey(b), data)
	if isFull(err) {
		// Other workers' lines filled the bucket past what it keeps for
		// the work: these run live, which makes room.
		fs := make([]fallback, len(ls))
		for i, l := range ls {
			fs[i] = fallback{l, "the vendor batch bucket is too full to record a batch"}
		}
		return e.live(ctx, st, "", fs)
	}
	if err != nil {
		return err
	}
	be := &batchEntry{Batch: b, rev: rev}
	won, err := e.claim(ctx, st, b.Ref, ls)
	if err != nil {
		return err
	}
	if len(won) == 0 {
		e.log.Info("offload: another worker claimed the batch's lines first", slog.String("batch", b.Ref), slog.String("group", b.Group))
		return st.kv.Delete(ctx, batchKey(b), jetstream.LastRevision(rev))
	}
	if len(won) < len(ls) {
		b.Jobs = b.Jobs[:0]
		for _, l := range won {
			b.Jobs = append(b.Jobs, l.Job)
		}
		if err := e.put(ctx, st, be); err != nil {
			return err
		}
	}
	e.log.Info("offload: batch recorded", slog.String("batch", b.Ref), slog.String("group", b.Group), slog.String("deployment", b.Deployment), slog.Int("lines", len(b.Jobs)))
	return e.submit(ctx, st, be, t)
}

// requests builds the vendor's lines of b, of the lines b claimed; the
// lines whose request cannot be made go back to the live path.
func (e *Engine) requests(ctx context.Context, st *bucketState, b *batchEntry) ([]llm.BatchRequest, error) {
	ls, err := e.claimed(ctx, st, b.Batch)
	if err != nil {
		return nil, err
	}
	reqs := make([]llm.BatchRequest, 0, len(b.Jobs))
	var fs []fallback
	for i, l := range ls {
		if l == nil {
			continue // answered already, or another batch's
		}
		req, err := e.host.Request(l)
		if err != nil {
			fs = append(fs, fallback{l, err.Error()})
			continue
		}
		r := *req
		r.Model = b.Model
		reqs = append(reqs, llm.BatchRequest{CustomID: customID(b.Ref, i), Request: &r})
	}
	return reqs, e.live(ctx, st, b.Ref, fs)
}

// submit sends a batch in state submitting to its vendor, unless the
// vendor has it already (a worker died between the vendor's reply and the
// record of its id), and records the vendor's id.
func (e *Engine) submit(ctx context.Context, st *bucketState, b *batchEntry, t policy.BatchTarget) error {
	reqs, err := e.requests(ctx, st, b)
	if err != nil {
		return err
	}
	if len(reqs) == 0 {
		return st.kv.Delete(ctx, batchKey(b.Batch), jetstream.LastRevision(b.rev))
	}
	info, err := t.Batcher.FindBatch(ctx, b.Ref, b.Created.Add(-time.Minute), len(reqs))
	if err != nil {
		return fmt.Errorf("find: %w", err)
	}
	if info == nil {
		if sending, err := e.attempt(ctx, st, b); !sending || err != nil {
			return err
		}
		info, err = e.submitBatch(ctx, t, b.Ref, reqs)
		if err != nil {
			return e.submitFailed(ctx, st, b, err)
		}
		e.log.Info("offload: batch sent", slog.String("batch", b.Ref), slog.String("vendor_id", info.ID), slog.Int("lines", len(reqs)))
	} else {
		e.log.Info("offload: batch found at the vendor (its id was not recorded)", slog.String("batch", b.Ref), slog.String("vendor_id", info.ID))
	}
	b.State, b.VendorID, b.Submitted, b.Sent, b.Status = stateSubmitted, info.ID, e.cfg.Now(), len(reqs), info.Status
	return e.put(ctx, st, b)
}

// submitBatch sends a batch, cut off after a lease so that it has ended
// before another worker may try again (attempt).
func (e *Engine) submitBatch(ctx context.Context, t policy.BatchTarget, ref string, reqs []llm.BatchRequest) (*llm.BatchInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Lease)
	defer cancel()
	return t.Batcher.SubmitBatch(ctx, ref, reqs)
}

// attempt is the one gate before a batch goes to its vendor: it records
// this engine's attempt with compare-and-set on the revision the record
// was read at. False (and no error): another worker set out to send it
// less than two leases ago and may be sending it now (a send is cut off
// after one, see submit); the vendor's FindBatch tells once that lapsed. An error: the record changed since it was read
// (another worker works it): this engine does not send it.
func (e *Engine) attempt(ctx context.Context, st *bucketState, b *batchEntry) (bool, error) {
	now := e.cfg.Now()
	if a := b.Attempt; a != nil && a.Owner != e.cfg.Owner && now.Before(a.At.Add(2*e.cfg.Lease)) {
		return false, nil
	}
	b.Attempt = &attempt{Owner: e.cfg.Owner, At: now}
	if err := e.put(ctx, st, b); err != nil {
		return false, fmt.Errorf("claim: %w", err)
	}
	return true, nil
}

func (e *Engine) put(ctx context.Context, st *bucketState, b *batchEntry) error {
	data, err := json.Marshal(b.Batch)
	if err != nil {
		return err
	}
	rev, err := st.kv.Update(ctx, batchKey(b.Batch), data, b.rev)
	if err != nil {
		return err
	}
	b.rev = rev
	return nil
}

// submitFailed handles a batch the vendor refused: one it will never take
// (a bad request) goes back to the live path; any other failure is tried
// again at the next tick.
func (e *Engine) submitFailed(ctx context.Context, st *bucketState, b *batchEntry, err error) error {
	if k := llm.KindOf(err); k != llm.KindBadRequest && k != llm.KindAuth {
		return fmt.Errorf("submit: %w", err)
	}
	return e.endLive(ctx, st, b, "the vendor refused the batch: "+err.Error())
}

// endLive sends every line of b still waiting back to the live path and
// removes b.
func (e *Engine) endLive(ctx context.Context, st *bucketState, b *batchEntry, why string) error {
	ls, err := e.claimed(ctx, st, b.Batch)
	if err != nil {
		return err
	}
	var fs []fallback
	for _, l := range ls {
		if l != nil {
			fs = append(fs, fallback{l, why})
		}
	}
	if err := e.live(ctx, st, b.Ref, fs); err != nil {
		return err
	}
	return st.kv.Delete(ctx, batchKey(b.Batch))
}

// advance moves one batch on: sends it if it was not, polls it, answers
// its lines once it ended.
func (e *Engine) advance(ctx context.Context, st *bucketState, b *batchEntry) error {
	t, ok := e.targets(st.tenant, b.Group)
	if !ok || t.Deployment != b.Deployment {
		if b.State == stateSubmitting {
			return e.endLive(ctx, st, b, "the group's vendor batch deployment changed before the batch was sent")
		}
		return fmt.Errorf("deployment %s no longer takes the group's batches; the batch waits for it", b.Deployment)
	}
	if b.State == stateSubmitting {
		return e.submit(ctx, st, b, t)
	}
	left, err := e.cancelSent(ctx, st, b, t)
	if err != nil {
		return err
	}
	info, err := t.Batcher.PollBatch(ctx, b.VendorID)
	if err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	switch info.State {
	case llm.BatchRunning:
		if left == 0 {
			return e.cancelBatch(ctx, st, b, t)
		}
		if info.Status != b.Status || info.Done != b.Done {
			b.Status, b.Done = info.Status, info.Done
			return e.put(ctx, st, b)
		}
		return nil
	case llm.BatchFailed:
		return e.endLive(ctx, st, b, "the vendor failed the batch: "+info.Message)
	}
	return e.answer(ctx, st, b, t)
}

// cancelSent answers cancelled the lines of sent batch b whose jobs were
// cancelled, and removes them, so that their vendor answers are dropped;
// it returns how many of b's lines are left.
func (e *Engine) cancelSent(ctx context.Context, st *bucketState, b *batchEntry, t policy.BatchTarget) (int, error) {
	left := 0
	for _, job := range b.Jobs {
		l := st.lines[lineKey(b.Group, job)]
		if l == nil {
			continue
		}
		if !e.host.Cancelled(l) {
			left++
			continue
		}
		if err := e.host.Answer(ctx, l, &Answer{Cancelled: true, BatchID: b.VendorID, Target: t}); err != nil {
			return 0, err
		}
		if err := e.done(ctx, st, l); err != nil {
			return 0, err
		}
	}
	return left, nil
}

// cancelBatch cancels at its vendor a batch in flight whose jobs were all
// cancelled, and removes it.
func (e *Engine) cancelBatch(ctx context.Context, st *bucketState, b *batchEntry, t policy.BatchTarget) error {
	if err := t.Batcher.CancelBatch(ctx, b.VendorID); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	e.log.Info("offload: batch cancelled at the vendor: its jobs were", slog.String("batch", b.Ref), slog.String("vendor_id", b.VendorID))
	return st.kv.Delete(ctx, batchKey(b.Batch), jetstream.LastRevision(b.rev))
}

// answer publishes the answers of an ended batch, sends the lines the
// vendor failed or did not run back to the live path, and removes the
// batch. A line already answered (by a worker that died before it removed
// the batch) is gone from the bucket and skipped.
func (e *Engine) answer(ctx context.Context, st *bucketState, b *batchEntry, t policy.BatchTarget) error {
	ls, err := e.claimed(ctx, st, b.Batch)
	if err != nil {
		return err
	}
	seen := make([]bool, len(b.Jobs))
	var fs []fallback
	for a, err := range t.Batcher.BatchAnswers(ctx, b.VendorID) {
		if err != nil {
			return fmt.Errorf("answers: %w", err)
		}
		if err := e.renew(ctx, st); err != nil {
			return err
		}
		i := lineIndex(a.CustomID, b.Ref, len(b.Jobs))
		if i < 0 || seen[i] {
			continue
		}
		seen[i] = true
		l := ls[i]
		if l == nil {
			continue
		}
		if a.Err != nil {
			fs = append(fs, fallback{l, "the vendor failed the line: " + a.Err.Error()})
			continue
		}
		ans := &Answer{BatchAnswer: a, BatchID: b.VendorID, CostUSD: catalog.BatchCost(t.Info, a.Usage), Target: t}
		if err := e.host.Answer(ctx, l, ans); err != nil {
			return err
		}
		if err := e.done(ctx, st, l); err != nil {
			return err
		}
	}
	for i, l := range ls {
		if l != nil && !seen[i] {
			fs = append(fs, fallback{l, "the vendor did not run the line"})
		}
	}
	if err := e.live(ctx, st, b.Ref, fs); err != nil {
		return err
	}
	e.log.Info("offload: batch answered", slog.String("batch", b.Ref), slog.String("vendor_id", b.VendorID), slog.Int("lines", len(b.Jobs)))
	return st.kv.Delete(ctx, batchKey(b.Batch))
}
