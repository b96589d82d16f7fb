package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/pkg/bus"
)

// OpenAI's Batch API on the fleet. A batch's state is its record in
// BucketBatches; the gateway that runs it holds a lease there (owner and a
// heartbeat). The lines run through bus.Client.RunBatch, the code `submit
// batch` uses, whose job ids derive from the batch id and each line's
// custom_id: when a gateway dies, another adopts the batch once the lease
// is stale and runs it again, which reads finished lines back from the
// results stream and does not publish queued ones twice.

// Batch statuses (OpenAI's).
const (
	batchValidating = "validating"
	batchFailed     = "failed"
	batchInProgress = "in_progress"
	batchFinalizing = "finalizing"
	batchCompleted  = "completed"
	batchCancelling = "cancelling"
	batchCancelled  = "cancelled"
	batchExpired    = "expired"
)

// Leases: a running batch's record is refreshed every batchBeat; one not
// refreshed for batchLease is adopted by the next sweep (every batchSweep).
const (
	batchBeat  = 2 * time.Second
	batchLease = 15 * time.Second
	batchSweep = 5 * time.Second
)

// batchView is OpenAI's batch object.
type batchView struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Endpoint         string            `json:"endpoint"`
	Errors           *batchErrors      `json:"errors"`
	InputFileID      string            `json:"input_file_id"`
	CompletionWindow string            `json:"completion_window"`
	Status           string            `json:"status"`
	OutputFileID     *string           `json:"output_file_id"`
	ErrorFileID      *string           `json:"error_file_id"`
	CreatedAt        int64             `json:"created_at"`
	InProgressAt     *int64            `json:"in_progress_at"`
	ExpiresAt        *int64            `json:"expires_at"`
	FinalizingAt     *int64            `json:"finalizing_at"`
	CompletedAt      *int64            `json:"completed_at"`
	FailedAt         *int64            `json:"failed_at"`
	ExpiredAt        *int64            `json:"expired_at"`
	CancellingAt     *int64            `json:"cancelling_at"`
	CancelledAt      *int64            `json:"cancelled_at"`
	RequestCounts    requestCounts     `json:"request_counts"`
	Metadata         map[string]string `json:"metadata"`
}

type batchErrors struct {
	Object string       `json:"object"`
	Data   []batchError `json:"data"`
}

type batchError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	Line    *int    `json:"line"`
}

type requestCounts struct {
	Total     int `json:"total"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

// batchRecord is a batch and its lease.
type batchRecord struct {
	Batch  batchView `json:"batch"`
	Tenant string    `json:"tenant,omitempty"`
	Owner  string    `json:"owner,omitempty"`
	Beat   time.Time `json:"beat"`
}

func (b *batchRecord) active() bool {
	switch b.Batch.Status {
	case batchValidating, batchInProgress, batchFinalizing, batchCancelling:
		return true
	}
	return false
}

// expired reports whether the batch's completion window is over.
func (b *batchRecord) expired(now time.Time) bool {
	return b.Batch.ExpiresAt != nil && now.Unix() >= *b.Batch.ExpiresAt
}

func unix(t time.Time) *int64 { u := t.Unix(); return &u }

func batchNotFound(id string) *apiError {
	e := newError(bus.CodeInvalidRequest, "No batch found with id '%s'.", id)
	e.status, e.param = http.StatusNotFound, "batch_id"
	return e
}

// batchCreate is POST /v1/batches.
type batchCreate struct {
	InputFileID      string            `json:"input_file_id"`
	Endpoint         string            `json:"endpoint"`
	CompletionWindow string            `json:"completion_window"`
	Metadata         map[string]string `json:"metadata"`
}

func (g *Gateway) createBatch(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	ctx := r.Context()
	var in batchCreate
	if e := g.decodeBody(w, r, &in); e != nil {
		writeOpenAIError(w, e)
		return
	}
	switch {
	case in.Endpoint != "/v1/chat/completions":
		writeOpenAIError(w, invalidParam("endpoint", "unsupported_value", "Unsupported value: 'endpoint' does not support '%s'. Switchyard runs '/v1/chat/completions'.", in.Endpoint))
		return
	case in.CompletionWindow != "24h":
		writeOpenAIError(w, invalidParam("completion_window", "unsupported_value", "Unsupported value: 'completion_window' must be '24h'."))
		return
	}
	info, err := g.fileInfo(ctx, id.Tenant, in.InputFileID)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	if info == nil {
		e := fileNotFound(in.InputFileID)
		e.param = "input_file_id"
		writeOpenAIError(w, e)
		return
	}
	if info.Metadata["purpose"] != "batch" {
		writeOpenAIError(w, invalidParam("input_file_id", "", "File %s has purpose '%s', not 'batch'.", in.InputFileID, info.Metadata["purpose"]))
		return
	}
	now := g.now()
	// A batch id is a RunBatch id: its lines' job ids derive from it.
	bid := "batch_" + strings.ReplaceAll(uuid.Must(uuid.NewV7()).String(), "-", "")
	rec := &batchRecord{Tenant: id.Tenant, Batch: batchView{
		ID: bid, Object: "batch", Endpoint: in.Endpoint, InputFileID: in.InputFileID, CompletionWindow: in.CompletionWindow,
		Status: batchValidating, CreatedAt: now.Unix(), ExpiresAt: unix(now.Add(24 * time.Hour)), Metadata: in.Metadata,
	}}
	kv, err := g.store.kv(ctx, BucketBatches)
	if err == nil {
		b, _ := json.Marshal(rec) // plain struct
		_, err = kv.Create(ctx, storeKey(id.Tenant, bid), b)
	}
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	g.batches.wakeUp()
	writeJSON(w, http.StatusOK, rec.Batch)
}

func (g *Gateway) batchRecord(ctx context.Context, tenant, bid string) (*batchRecord, uint64, error) {
	if !strings.HasPrefix(bid, "batch_") || !bus.ValidBatchID(bid) {
		return nil, 0, nil
	}
	kv, err := g.store.kv(ctx, BucketBatches)
	if err != nil {
		return nil, 0, err
	}
	return readBatch(ctx, kv, storeKey(tenant, bid))
}

func readBatch(ctx context.Context, kv jetstream.KeyValue, key string) (*batchRecord, uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var rec batchRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, 0, err
	}
	return &rec, e.Revision(), nil
}

func (g *Gateway) getBatch(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	rec, _, err := g.batchRecord(r.Context(), id.Tenant, r.PathValue("id"))
	switch {
	case err != nil:
		writeOpenAIError(w, busError(err))
	case rec == nil:
		writeOpenAIError(w, batchNotFound(r.PathValue("id")))
	default:
		writeJSON(w, http.StatusOK, rec.Batch)
	}
}

func (g *Gateway) listBatches(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	ctx := r.Context()
	kv, err := g.store.kv(ctx, BucketBatches)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	data := []batchView{}
	keys, err := kv.ListKeysFiltered(ctx, tenantToken(id.Tenant)+".*")
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	for k := range keys.Keys() {
		if rec, _, err := readBatch(ctx, kv, k); err == nil && rec != nil {
			data = append(data, rec.Batch)
		}
	}
	slices.SortFunc(data, func(a, b batchView) int { return strings.Compare(b.ID, a.ID) }) // UUIDv7: newest first
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false})
}

// cancelBatch marks a batch cancelling; its runner stops publishing, cancels
// the lines still running and ends it as cancelled.
func (g *Gateway) cancelBatch(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	rec, err := g.markCancelling(r.Context(), id.Tenant, r.PathValue("id"))
	switch {
	case errors.Is(err, errNoBatch):
		writeOpenAIError(w, batchNotFound(r.PathValue("id")))
	case err != nil:
		writeOpenAIError(w, busError(err))
	default:
		writeJSON(w, http.StatusOK, rec.Batch)
	}
}

// markCancelling marks a tenant's batch cancelling (the console cancels
// through it too).
func (g *Gateway) markCancelling(ctx context.Context, tenant, bid string) (*batchRecord, error) {
	kv, err := g.store.kv(ctx, BucketBatches)
	if err != nil {
		return nil, err
	}
	return g.batches.update(ctx, kv, storeKey(tenant, bid), func(rec *batchRecord) error {
		if rec.active() && rec.Batch.Status != batchCancelling {
			rec.Batch.Status, rec.Batch.CancellingAt = batchCancelling, unix(g.now())
		}
		return nil
	})
}

var errNoBatch = errors.New("gateway: no such batch")

// batchRunner runs and adopts batches.
type batchRunner struct {
	g    *Gateway
	self string // this gateway's lease owner id
	wake chan struct{}

	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
}

func newBatchRunner(g *Gateway) *batchRunner {
	return &batchRunner{g: g, self: uuid.NewString(), wake: make(chan struct{}, 1), running: map[string]bool{}}
}

func (b *batchRunner) wakeUp() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// update applies fn to a record with compare-and-set, retrying on a
// concurrent change.
func (b *batchRunner) update(ctx context.Context, kv jetstream.KeyValue, key string, fn func(*batchRecord) error) (*batchRecord, error) {
	for {
		rec, rev, err := readBatch(ctx, kv, key)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			return nil, errNoBatch
		}
		if err := fn(rec); err != nil {
			return rec, err
		}
		v, _ := json.Marshal(rec) // plain struct
		_, err = kv.Update(ctx, key, v, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // changed since read: read again
		}
		return rec, err
	}
}

// runBatches adopts batches that no gateway runs (new ones, and those whose
// runner died) until ctx ends, and waits for the runs to stop.
func (g *Gateway) runBatches(ctx context.Context) error {
	b := g.batches
	defer b.wg.Wait()
	t := time.NewTicker(batchSweep)
	defer t.Stop()
	for {
		if err := b.sweep(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("batch sweep failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.wake:
		case <-t.C:
		}
	}
}

func (b *batchRunner) sweep(ctx context.Context) error {
	if _, err := b.g.js.KeyValue(ctx, BucketBatches); errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil // no batch was ever created
	}
	kv, err := b.g.store.kv(ctx, BucketBatches)
	if err != nil {
		return err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return err
	}
	now := b.g.now()
	for key := range keys.Keys() {
		b.mu.Lock()
		mine := b.running[key]
		b.mu.Unlock()
		if mine {
			continue
		}
		rec, err := b.update(ctx, kv, key, func(rec *batchRecord) error {
			if !rec.active() || (rec.Owner != "" && now.Sub(rec.Beat) < batchLease) {
				return errNotAdoptable
			}
			rec.Owner, rec.Beat = b.self, now
			return nil
		})
		if errors.Is(err, errNotAdoptable) || errors.Is(err, errNoBatch) {
			continue
		}
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.running[key] = true
		b.mu.Unlock()
		b.wg.Go(func() {
			defer func() {
				b.mu.Lock()
				delete(b.running, key)
				b.mu.Unlock()
			}()
			b.run(ctx, kv, key, rec)
		})
	}
	return nil
}

var errNotAdoptable = errors.New("gateway: batch not adoptable")

// run runs one adopted batch to its end, or until ctx ends (the gateway
// stops: the lease is released for another gateway to adopt at once).
func (b *batchRunner) run(ctx context.Context, kv jetstream.KeyValue, key string, rec *batchRecord) {
	g := b.g
	adopted := *rec
	log := g.log.With(slog.String("batch", rec.Batch.ID))
	client, err := g.client(rec.Tenant)
	if err != nil {
		log.Error("batch: no client for its tenant", slog.Any("error", err))
		return
	}
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	r := &batchRun{b: b, ctx: ctx, runCtx: runCtx, stop: stopRun, kv: kv, key: key, log: log, client: client, bid: rec.Batch.ID}
	// The heartbeat keeps the lease, publishes the counts and notices a
	// cancel while the lines run; it is stopped before the batch's end is
	// recorded, so that it cannot write stale counts over the final ones.
	beatDone := make(chan struct{})
	go r.heartbeat(beatDone)
	var stopBeat sync.Once
	r.stopHeartbeat = func() { stopBeat.Do(func() { stopRun(nil); <-beatDone }) }
	defer r.stopHeartbeat()

	// The input is copied to a local file first: read from the Object
	// Store while the lines run, a read paused for as long as the jobs in
	// flight take timed out and cut the batch short.
	in, total, err := b.spool(runCtx, rec)
	if err == nil {
		defer func() { _ = in.Close(); _ = os.Remove(in.Name()) }()
		rec, err = r.set(func(r *batchRecord) {
			if r.Batch.Status == batchValidating {
				r.Batch.Status, r.Batch.InProgressAt = batchInProgress, unix(g.now())
			}
			r.Batch.RequestCounts.Total = total
		})
	}
	if err != nil {
		b.fail(ctx, r.set, log, err)
		return
	}
	r.rec, r.in = rec, in
	cancelled, expired := rec.Batch.Status == batchCancelling, rec.expired(g.now())
	if r.out, err = newBatchOutput(); err != nil {
		b.fail(ctx, r.set, log, err)
		return
	}
	defer r.out.remove()
	// handed are the lines given to RunBatch, which it may have published.
	// A batch that no run had started before this one (adopted while
	// validating) has no other line in the fleet. RunBatch reads the items
	// on one goroutine and is over before handed is read.
	r.done, r.handed, r.fresh = map[string]bool{}, map[string]bool{}, adopted.Batch.InProgressAt == nil
	if !cancelled && !expired {
		var over bool
		if cancelled, expired, over = r.lines(); over {
			return
		}
	}
	r.end(cancelled, expired)
}

// batchRun is one run of a batch by the gateway that holds its lease.
type batchRun struct {
	b             *batchRunner
	ctx           context.Context // the gateway's
	runCtx        context.Context // the lines'; the heartbeat ends it
	stop          context.CancelCauseFunc
	stopHeartbeat func()
	kv            jetstream.KeyValue
	key           string
	log           *slog.Logger
	client        *bus.Client
	bid           string
	rec           *batchRecord
	in            *os.File
	out           *batchOutput
	done, handed  map[string]bool
	fresh         bool

	mu     sync.Mutex
	counts requestCounts
	lost   bool
}

// set updates the batch's record while this gateway holds its lease.
func (r *batchRun) set(fn func(*batchRecord)) (*batchRecord, error) {
	return r.b.update(context.WithoutCancel(r.ctx), r.kv, r.key, func(rec *batchRecord) error {
		if rec.Owner != r.b.self {
			r.lost = true
			return errLeaseLost
		}
		rec.Beat = r.b.g.now()
		fn(rec)
		return nil
	})
}

// heartbeat records the counts every batchBeat and stops the run when the
// lease is lost, the batch is cancelled or it expired.
func (r *batchRun) heartbeat(done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(batchBeat)
	defer t.Stop()
	for {
		select {
		case <-r.runCtx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		c := r.counts
		r.mu.Unlock()
		rec, err := r.set(func(rec *batchRecord) {
			rec.Batch.RequestCounts.Completed, rec.Batch.RequestCounts.Failed = c.Completed, c.Failed
		})
		switch {
		case errors.Is(err, errLeaseLost):
			r.stop(errLeaseLost)
			return
		case err == nil && rec.Batch.Status == batchCancelling:
			r.stop(errCancelled)
			return
		case err == nil && rec.expired(r.b.g.now()):
			r.stop(errExpired)
			return
		}
	}
}

// lines runs the batch's lines; over is true when the run ends here
// (stopping, the lease lost, a failure), else it says whether the batch
// was cancelled or expired meanwhile.
func (r *batchRun) lines() (cancelled, expired, over bool) {
	reader := &bus.BatchReader{Format: bus.BatchOpenAI, Resolve: r.b.g.catalog.Resolve}
	items := func(yield func(bus.BatchItem) bool) {
		for it := range reader.Items(r.in) {
			r.handed[it.CustomID] = true
			if !yield(it) {
				return
			}
		}
	}
	_, err := r.client.RunBatch(r.runCtx, bus.BatchConfig{ID: r.bid, Concurrency: r.b.g.cfg.BatchConcurrency}, items, func(o *bus.BatchOutcome) error {
		if o.Item.Line == 0 && o.Item.Err != nil {
			// Not a line: the input could not be read on.
			return fmt.Errorf("reading the input: %w", o.Item.Err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.done[o.Item.CustomID] = true
		if o.OK() {
			r.counts.Completed++
		} else {
			r.counts.Failed++
		}
		return r.out.write(o)
	})
	cause := context.Cause(r.runCtx)
	r.stopHeartbeat()
	switch {
	case r.ctx.Err() != nil || errors.Is(cause, errLeaseLost) || r.lost:
		// Stopping, or another gateway took the batch over.
		if !r.lost {
			_, _ = r.set(func(rec *batchRecord) { rec.Owner = "" })
		}
		return false, false, true
	case errors.Is(cause, errCancelled):
		return true, false, false
	case errors.Is(cause, errExpired):
		return false, true, false
	case err != nil:
		r.b.fail(r.ctx, r.set, r.log, err)
		return false, false, true
	}
	return false, false, false
}

// end cancels or expires what is left, uploads the output and records the
// batch's end.
func (r *batchRun) end(cancelled, expired bool) {
	b, g, ctx, log := r.b, r.b.g, r.ctx, r.log
	if cancelled || expired {
		b.cancelRest(context.WithoutCancel(ctx), r.client, r.rec, r.in, func(customID string) bool {
			return !r.done[customID] && (r.handed[customID] || !r.fresh)
		})
	}
	if expired {
		n, err := b.expireRest(r.bid, r.in, r.done, r.out)
		if err != nil {
			b.fail(ctx, r.set, log, err)
			return
		}
		r.counts.Failed += n
	}
	_, err := r.set(func(rec *batchRecord) {
		if !cancelled && !expired {
			rec.Batch.Status, rec.Batch.FinalizingAt = batchFinalizing, unix(g.now())
		}
	})
	if err != nil {
		log.Warn("batch: finalizing not recorded", slog.Any("error", err))
	}
	outID, errID, err := r.out.upload(context.WithoutCancel(ctx), g, r.rec.Tenant, r.bid)
	if err != nil {
		b.fail(ctx, r.set, log, err)
		return
	}
	counts := r.counts
	final, err := r.set(func(rec *batchRecord) {
		now := unix(g.now())
		rec.Batch.OutputFileID, rec.Batch.ErrorFileID = outID, errID
		rec.Batch.RequestCounts.Completed, rec.Batch.RequestCounts.Failed = counts.Completed, counts.Failed
		switch {
		case cancelled:
			rec.Batch.Status, rec.Batch.CancelledAt = batchCancelled, now
		case expired:
			rec.Batch.Status, rec.Batch.ExpiredAt = batchExpired, now
		default:
			rec.Batch.Status, rec.Batch.CompletedAt = batchCompleted, now
		}
		rec.Owner = ""
	})
	if err != nil {
		log.Warn("batch: end not recorded", slog.Any("error", err))
		return
	}
	g.met.batches.WithLabelValues(final.Batch.Status).Inc()
	log.Info("batch ended", slog.String("status", final.Batch.Status), slog.Int("completed", counts.Completed), slog.Int("failed", counts.Failed))
}

var (
	errLeaseLost = errors.New("gateway: batch lease lost")
	errCancelled = errors.New("gateway: batch cancelled")
	errExpired   = errors.New("gateway: batch expired")
)

func (b *batchRunner) fail(ctx context.Context, set func(func(*batchRecord)) (*batchRecord, error), log *slog.Logger, cause error) {
	if ctx.Err() != nil {
		return
	}
	log.Error("batch failed", slog.Any("error", cause))
	_, _ = set(func(r *batchRecord) {
		r.Batch.Status, r.Batch.FailedAt, r.Owner = batchFailed, unix(b.g.now()), ""
		r.Batch.Errors = &batchErrors{Object: "list", Data: []batchError{{Code: "internal", Message: cause.Error()}}}
	})
	b.g.met.batches.WithLabelValues(batchFailed).Inc()
}

// spool copies a batch's input file to a temporary file and counts its
// requests (non-empty lines); the file is returned at its start.
func (b *batchRunner) spool(ctx context.Context, rec *batchRecord) (*os.File, int, error) {
	obs, err := b.g.store.files(ctx)
	if err != nil {
		return nil, 0, err
	}
	obj, err := obs.Get(ctx, fileName(rec.Tenant, rec.Batch.InputFileID))
	if err != nil {
		return nil, 0, fmt.Errorf("input file %s: %w", rec.Batch.InputFileID, err)
	}
	defer obj.Close() //nolint:errcheck // read-only
	f, err := os.CreateTemp("", "switchyard-batch-in-")
	if err != nil {
		return nil, 0, err
	}
	n, err := countLines(io.TeeReader(obj, f))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, 0, fmt.Errorf("input file %s: %w", rec.Batch.InputFileID, err)
	}
	return f, n, nil
}

// countLines counts the non-empty lines of r, reading it to its end.
func countLines(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	n := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	return n, sc.Err()
}

// cancelRest cancels the jobs of the lines that running says may still
// run, a few at a time: one at a time, a cancelled batch of thousands of
// lines took as many cancel round trips in a row before it could end.
func (b *batchRunner) cancelRest(ctx context.Context, client *bus.Client, rec *batchRecord, in *os.File, running func(customID string) bool) {
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return
	}
	var eg errgroup.Group
	eg.SetLimit(16)
	reader := &bus.BatchReader{Format: bus.BatchOpenAI, Resolve: b.g.catalog.Resolve}
	for it := range reader.Items(in) {
		if it.Err != nil || !running(it.CustomID) {
			continue
		}
		eg.Go(func() error {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_ = client.CancelBatchLine(cctx, rec.Batch.ID, it)
			return nil
		})
	}
	_ = eg.Wait()
}

// expireRest writes an error line for every line that did not end, as
// OpenAI does when a batch's completion window is over, and returns how
// many it wrote.
func (b *batchRunner) expireRest(bid string, in *os.File, done map[string]bool, out *batchOutput) (int, error) {
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	n := 0
	reader := &bus.BatchReader{Format: bus.BatchOpenAI, Resolve: b.g.catalog.Resolve}
	for it := range reader.Items(in) {
		if it.Err != nil || done[it.CustomID] {
			continue
		}
		e := &bus.Error{Code: "batch_expired", Message: "This request could not be executed before the completion window expired."}
		if err := out.write(&bus.BatchOutcome{Item: it, JobID: bus.BatchJobID(bid, it.Group, it.CustomID), Err: e}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// batchOutput collects output and error lines in temporary files (a batch
// may be larger than memory) until they are uploaded.
type batchOutput struct {
	ok, bad   *os.File
	nok, nbad int
}

func newBatchOutput() (*batchOutput, error) {
	ok, err := os.CreateTemp("", "switchyard-batch-out-")
	if err != nil {
		return nil, err
	}
	bad, err := os.CreateTemp("", "switchyard-batch-err-")
	if err != nil {
		_ = ok.Close()
		_ = os.Remove(ok.Name())
		return nil, err
	}
	return &batchOutput{ok: ok, bad: bad}, nil
}

// write appends an outcome's line (bus.MarshalBatchLine, as `submit batch`
// writes it) to the output file when it succeeded, else to the error file.
func (o *batchOutput) write(bo *bus.BatchOutcome) error {
	line, err := bus.MarshalBatchLine(bus.BatchOpenAI, bo)
	if err != nil {
		return err
	}
	f := o.bad
	if bo.OK() {
		f, o.nok = o.ok, o.nok+1
	} else {
		o.nbad++
	}
	_, err = f.Write(append(line, '\n'))
	return err
}

func (o *batchOutput) upload(ctx context.Context, g *Gateway, tenant, bid string) (okID, errID *string, err error) {
	put := func(f *os.File, n int, suffix string) (*string, error) {
		if n == 0 {
			return nil, nil
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		id := "file-" + strings.TrimPrefix(bid, "batch_") + "-" + suffix
		if _, err := g.putFile(ctx, tenant, id, bid+"_"+suffix+".jsonl", "batch_output", f); err != nil {
			return nil, err
		}
		return &id, nil
	}
	if okID, err = put(o.ok, o.nok, "output"); err != nil {
		return nil, nil, err
	}
	errID, err = put(o.bad, o.nbad, "error")
	return okID, errID, err
}

func (o *batchOutput) remove() {
	for _, f := range []*os.File{o.ok, o.bad} {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
}
