package ops

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// BucketReplays is the KV bucket that marks replayed dead letters, keyed by
// their sequence in the dead-letter stream. A dead letter is never changed
// or deleted by a replay (only a purge deletes it): the mark says when it
// was replayed, by whom, and under which message id. Marks expire with the
// dead letters (the stream's MaxAge).
const BucketReplays = "LLM_DLQ_REPLAYS"

// MaxScan bounds how many dead letters (headers only) a listing reads; a
// listing that stopped there says so (Truncated).
const MaxScan = 100_000

// DeadLetters is an operator's handle on the dead-letter stream. It is safe
// for concurrent use.
type DeadLetters struct {
	js   jetstream.JetStream
	subj bus.Subjects
	now  func() time.Time
}

// NewDeadLetters returns the dead letters of the deployment whose subjects
// (prefix) subj names; its tenant is ignored (dead letters are shared).
func NewDeadLetters(js jetstream.JetStream, subj bus.Subjects) *DeadLetters {
	return &DeadLetters{js: js, subj: subj.ForTenant(""), now: time.Now}
}

// DeadLetter is one dead letter.
type DeadLetter struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Group      string    `json:"group"`
	Tenant     string    `json:"tenant,omitempty"`
	JobID      string    `json:"job_id"`
	Code       string    `json:"code"`
	Reason     string    `json:"reason"`
	Subject    string    `json:"subject"` // the request subject it arrived on
	Deliveries int       `json:"deliveries"`
	Size       int       `json:"size"`
	// Replayed is set once the dead letter was replayed.
	Replayed *ReplayMark `json:"replayed,omitempty"`
	// Header and Data are the message (set by Get, not by List).
	Header nats.Header `json:"-"`
	Data   []byte      `json:"-"`
}

// ReplayMark records a replay.
type ReplayMark struct {
	At    time.Time `json:"at"`
	By    string    `json:"by"`
	MsgID string    `json:"msg_id"`
}

// Filter selects dead letters. The zero value selects all of them.
type Filter struct {
	Group string
	// Tenant, when set, keeps only that tenant's ("" the anonymous tenant's).
	Tenant *string
	Code   string
	JobID  string
	// Replayed keeps only replayed ("yes") or not replayed ("no") ones.
	Replayed string
	// Limit bounds the entries returned, newest first (default 100).
	Limit int
}

func (f Filter) match(d *DeadLetter) bool {
	switch {
	case f.Group != "" && d.Group != f.Group,
		f.Tenant != nil && d.Tenant != *f.Tenant,
		f.Code != "" && d.Code != f.Code,
		f.JobID != "" && d.JobID != f.JobID,
		f.Replayed == "yes" && d.Replayed == nil,
		f.Replayed == "no" && d.Replayed != nil:
		return false
	}
	return true
}

// Listing is a page of dead letters and the counts of all that matched.
type Listing struct {
	Entries []DeadLetter `json:"entries"` // newest first
	// Matched is how many matched the filter; ByCode counts them per
	// code, ByGroup per group.
	Matched int            `json:"matched"`
	ByCode  map[string]int `json:"by_code"`
	ByGroup map[string]int `json:"by_group"`
	// Replayed is how many of the matched were replayed.
	Replayed int `json:"replayed"`
	// Total is the number of dead letters in the stream.
	Total uint64 `json:"total"`
	// Truncated is set when the scan stopped at MaxScan.
	Truncated bool `json:"truncated,omitempty"`
}

// Reasons returns the codes of a listing, most frequent first.
func (l *Listing) Reasons() []string {
	codes := make([]string, 0, len(l.ByCode))
	for c := range l.ByCode {
		codes = append(codes, c)
	}
	slices.SortFunc(codes, func(a, b string) int {
		return cmp.Or(cmp.Compare(l.ByCode[b], l.ByCode[a]), strings.Compare(a, b))
	})
	return codes
}

// ErrNoDLQ is returned when the dead-letter stream does not exist (no worker
// has started yet).
var ErrNoDLQ = errors.New("ops: no dead-letter stream " + bus.StreamDLQ + " (no worker has started yet)")

// ErrNotFound is returned for a dead letter or job that does not exist.
var ErrNotFound = errors.New("ops: not found")

func (d *DeadLetters) stream(ctx context.Context) (jetstream.Stream, error) {
	s, err := d.js.Stream(ctx, bus.StreamDLQ)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNoDLQ
	}
	return s, err
}

// List reads the dead letters' headers (at most MaxScan of them) and
// returns those that match f, newest first, with counts.
func (d *DeadLetters) List(ctx context.Context, f Filter) (*Listing, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return nil, err
	}
	limit := cmp.Or(f.Limit, 100)
	marks, err := d.marks(ctx)
	if err != nil {
		return nil, err
	}
	l := &Listing{ByCode: map[string]int{}, ByGroup: map[string]int{}, Total: s.CachedInfo().State.Msgs}
	filter := d.subj.DLQs()
	if f.Group != "" {
		filter = d.subj.DLQ(f.Group)
	}
	var ring []DeadLetter // the newest limit matches
	l.Truncated, err = scan(ctx, s, jetstream.ConsumerConfig{FilterSubjects: []string{filter}, HeadersOnly: true}, MaxScan, func(m jetstream.Msg) bool {
		dl := fromMsg(m)
		dl.Replayed = marks[dl.Seq]
		if !f.match(&dl) {
			return true
		}
		l.Matched++
		l.ByCode[dl.Code]++
		l.ByGroup[dl.Group]++
		if dl.Replayed != nil {
			l.Replayed++
		}
		ring = append(ring, dl)
		if len(ring) > limit {
			ring = ring[1:]
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(ring)
	l.Entries = ring
	return l, nil
}

// Select returns the sequences of every dead letter matching f (bounded by
// MaxScan, like List), oldest first: what "replay all of a reason" or
// "purge all" acts on.
func (d *DeadLetters) Select(ctx context.Context, f Filter) ([]uint64, error) {
	f.Limit = MaxScan
	l, err := d.List(ctx, f)
	if err != nil {
		return nil, err
	}
	seqs := make([]uint64, 0, len(l.Entries))
	for i := len(l.Entries) - 1; i >= 0; i-- {
		seqs = append(seqs, l.Entries[i].Seq)
	}
	return seqs, nil
}

// Get returns one dead letter with its message.
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (*DeadLetter, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return nil, err
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: dead letter %d", ErrNotFound, seq)
	}
	if err != nil {
		return nil, err
	}
	dl := fromHeader(m.Sequence, m.Time, m.Subject, m.Header, len(m.Data))
	if !strings.HasPrefix(m.Subject, strings.TrimSuffix(d.subj.DLQs(), ">")) {
		return nil, fmt.Errorf("%w: dead letter %d", ErrNotFound, seq)
	}
	dl.Header, dl.Data = m.Header, m.Data
	kv, err := d.marksBucket(ctx, false)
	if err != nil {
		return nil, err
	}
	if kv != nil {
		if e, err := kv.Get(ctx, strconv.FormatUint(seq, 10)); err == nil {
			var mk ReplayMark
			if json.Unmarshal(e.Value(), &mk) == nil {
				dl.Replayed = &mk
			}
		}
	}
	return &dl, nil
}

// Request is the dead letter's request, redacted (nil unless the dead
// letter came from Get).
func (d *DeadLetter) Request() *Request {
	if d.Header == nil {
		return nil
	}
	r := requestOf(d.Header, d.Data)
	r.Time, r.Seq, r.Stream = d.Time, d.Seq, bus.StreamDLQ
	return r
}

func fromMsg(m jetstream.Msg) DeadLetter {
	meta, _ := m.Metadata()
	var seq uint64
	var ts time.Time
	if meta != nil {
		seq, ts = meta.Sequence.Stream, meta.Timestamp
	}
	size, _ := strconv.Atoi(m.Headers().Get(nats.MsgSize))
	return fromHeader(seq, ts, m.Subject(), m.Headers(), size)
}

func fromHeader(seq uint64, ts time.Time, subject string, h nats.Header, size int) DeadLetter {
	n, _ := strconv.Atoi(h.Get(bus.HeaderDLQDeliveries))
	group := subject[strings.LastIndexByte(subject, '.')+1:]
	return DeadLetter{
		Seq: seq, Time: ts, Group: group, Tenant: h.Get(bus.HeaderTenant), JobID: h.Get(bus.HeaderDLQJob),
		Code: h.Get(bus.HeaderDLQCode), Reason: h.Get(bus.HeaderDLQReason), Subject: h.Get(bus.HeaderDLQSubject),
		Deliveries: n, Size: size,
	}
}

// marksBucket opens the replay marks' bucket; with create it creates it
// (expiring with the dead letters), else it returns nil when it is missing.
func (d *DeadLetters) marksBucket(ctx context.Context, create bool) (jetstream.KeyValue, error) {
	kv, err := d.js.KeyValue(ctx, BucketReplays)
	if err == nil || !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	if !create {
		return nil, nil
	}
	cfg := jetstream.KeyValueConfig{Bucket: BucketReplays, Description: "Switchyard: replayed dead letters, by sequence in " + bus.StreamDLQ, History: 1, Storage: jetstream.FileStorage}
	if s, err := d.stream(ctx); err == nil {
		sc := s.CachedInfo().Config
		cfg.TTL, cfg.Replicas = sc.MaxAge, sc.Replicas
	}
	kv, err = d.js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = d.js.KeyValue(ctx, BucketReplays)
	}
	return kv, err
}

// marks returns every replay mark, by dead-letter sequence.
func (d *DeadLetters) marks(ctx context.Context) (map[uint64]*ReplayMark, error) {
	out := map[uint64]*ReplayMark{}
	kv, err := d.marksBucket(ctx, false)
	if err != nil || kv == nil {
		return out, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop() //nolint:errcheck // read-only
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-w.Updates():
			if e == nil { // every current value was delivered
				return out, nil
			}
			seq, err := strconv.ParseUint(e.Key(), 10, 64)
			var mk ReplayMark
			if err == nil && json.Unmarshal(e.Value(), &mk) == nil {
				out[seq] = &mk
			}
		}
	}
}

// ReplayOutcome is what happened to one dead letter of a replay.
type ReplayOutcome struct {
	Seq   uint64 `json:"seq"`
	JobID string `json:"job_id,omitempty"`
	// MsgID is the replay's Nats-Msg-Id (bus.ReplayMsgID).
	MsgID string `json:"msg_id,omitempty"`
	// Skipped says why the dead letter was not replayed ("" when it was).
	Skipped string `json:"skipped,omitempty"`
}

// Replay publishes each dead letter again on the request subject it
// arrived on, as a new run of the same job (bus.HeaderReplay; the worker
// stores its result even though the job had one), and marks it replayed by
// who. A dead letter replayed before is skipped, and so is one whose
// subject is not a request subject of this deployment. It stops at the
// first failure to publish, returning the outcomes so far.
func (d *DeadLetters) Replay(ctx context.Context, seqs []uint64, who string) ([]ReplayOutcome, error) {
	kv, err := d.marksBucket(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("ops: replay marks %s: %w", BucketReplays, err)
	}
	var out []ReplayOutcome
	for _, seq := range seqs {
		o, err := d.replayOne(ctx, kv, seq, who)
		if err != nil {
			return out, err
		}
		out = append(out, o)
	}
	return out, nil
}

func (d *DeadLetters) replayOne(ctx context.Context, kv jetstream.KeyValue, seq uint64, who string) (ReplayOutcome, error) {
	o := ReplayOutcome{Seq: seq}
	dl, err := d.Get(ctx, seq)
	if errors.Is(err, ErrNotFound) {
		o.Skipped = "no such dead letter (purged or expired)"
		return o, nil
	}
	if err != nil {
		return o, err
	}
	o.JobID = dl.JobID
	if dl.Replayed != nil {
		o.Skipped = fmt.Sprintf("replayed already, %s by %s", dl.Replayed.At.UTC().Format(time.RFC3339), dl.Replayed.By)
		return o, nil
	}
	if _, ok := d.subj.ParseRequest(dl.Subject); !ok {
		o.Skipped = fmt.Sprintf("%q is not a request subject of this fleet", dl.Subject)
		return o, nil
	}
	if dl.JobID == "" || !bus.ValidJobID(dl.JobID) {
		o.Skipped = "the dead letter names no valid job id"
		return o, nil
	}
	m := nats.NewMsg(dl.Subject)
	for k, v := range dl.Header {
		if strings.HasPrefix(k, "Llm-Dlq-") || k == bus.HeaderTenant || k == bus.HeaderMsgID || strings.HasPrefix(k, "Nats-") {
			continue
		}
		m.Header[k] = v
	}
	o.MsgID = bus.ReplayMsgID(dl.JobID, seq)
	m.Header.Set(bus.HeaderMsgID, o.MsgID)
	m.Header.Set(bus.HeaderReplay, strconv.FormatUint(seq, 10))
	m.Data = dl.Data
	// Publish first, then mark: a replay whose mark could not be written
	// is deduplicated by its message id if it is tried again.
	if _, err := d.js.PublishMsg(ctx, m); err != nil {
		return o, fmt.Errorf("ops: replay dead letter %d on %s: %w", seq, dl.Subject, err)
	}
	mark, _ := json.Marshal(ReplayMark{At: d.now().UTC(), By: who, MsgID: o.MsgID}) // plain struct
	if _, err := kv.Create(ctx, strconv.FormatUint(seq, 10), mark); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return o, fmt.Errorf("ops: dead letter %d was replayed but not marked: %w", seq, err)
	}
	return o, nil
}

// Purge deletes dead letters (and their replay marks) for good. It returns
// how many were deleted; sequences that no longer exist are passed over.
func (d *DeadLetters) Purge(ctx context.Context, seqs []uint64) (int, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return 0, err
	}
	kv, err := d.marksBucket(ctx, false)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, seq := range seqs {
		if err := s.DeleteMsg(ctx, seq); err != nil {
			// The server says a missing message's delete failed; tell
			// that from a real failure by looking.
			if _, gerr := s.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
				continue
			}
			return n, fmt.Errorf("ops: purge dead letter %d: %w", seq, err)
		}
		n++
		if kv != nil {
			_ = kv.Purge(ctx, strconv.FormatUint(seq, 10))
		}
	}
	return n, nil
}
