// Package heartbeat lets every worker tell the fleet it is alive and what it
// sees: a record per worker in the KV bucket LLM_WORKERS, put every few
// seconds, holding the worker's identity, its groups and a snapshot of its
// own Prometheus metrics (the switchyard_* families and the time to first
// token), in the Prometheus text format. The console reads the bucket to
// show workers connected, throughput, error rates, breakers, limits, rpm/tpm
// and TTFT percentiles fleet-wide, without scraping every worker.
//
// The bucket is bounded: a record expires TTL after its last put (a worker
// that died goes away by itself), a record is at most MaxRecordBytes (the
// metrics are cut at a family boundary beyond it) and the bucket at most
// MaxBucketBytes. It imports NATS and the Prometheus client, never the
// worker (the worker's process wires it).
package heartbeat

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Bucket is the KV bucket of worker records, keyed by worker id.
const Bucket = "LLM_WORKERS"

// Bounds of the bucket.
const (
	// TTL is how long a record outlives its last put.
	TTL = 30 * time.Second
	// MaxRecordBytes bounds one record.
	MaxRecordBytes = 256 << 10
	// MaxBucketBytes bounds the bucket (256 workers of the largest record).
	MaxBucketBytes = 64 << 20
)

// Record is one worker's heartbeat.
type Record struct {
	// V is the record's format version (1).
	V           int       `json:"v"`
	ID          string    `json:"id"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	Started     time.Time `json:"started"`
	At          time.Time `json:"at"`
	Groups      []string  `json:"groups"`
	Concurrency int       `json:"concurrency"`
	// Metrics is the worker's metrics snapshot in the Prometheus text
	// exposition format (the families Families selects).
	Metrics string `json:"metrics"`
}

// Families reports whether a metric family is part of a heartbeat: the
// fleet's own (switchyard_*) and the time to first token. Go runtime and
// process metrics are left to Prometheus.
func Families(name string) bool {
	return strings.HasPrefix(name, "switchyard_") || name == "gen_ai_server_time_to_first_token_seconds"
}

// Config configures Run.
type Config struct {
	// Gatherer is the worker's metrics registry. Required.
	Gatherer prometheus.Gatherer
	// Groups the worker serves, and its Concurrency per group.
	Groups      []string
	Concurrency int
	// Interval between puts (default 5s; at most TTL/3).
	Interval time.Duration
	// Replicas of the bucket (default 1).
	Replicas int
	// Logger default slog.Default().
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Open opens the bucket, creating it when it is missing.
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err == nil || !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "Switchyard workers' heartbeats: identity, groups and a metrics snapshot",
		History: 1, TTL: TTL, MaxValueSize: MaxRecordBytes, MaxBytes: MaxBucketBytes,
		Storage: jetstream.MemoryStorage, Replicas: cmp.Or(replicas, 1),
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, Bucket)
	}
	return kv, err
}

// Run puts the worker's record every Interval until ctx ends, then deletes
// it. A put that fails is logged and tried again at the next beat: a
// heartbeat never stops a worker.
func Run(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	cfg.Interval = min(cmp.Or(cfg.Interval, 5*time.Second), TTL/3)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	host, _ := os.Hostname()
	rec := Record{V: 1, Host: host, PID: os.Getpid(), Started: cfg.Now().UTC(), Groups: cfg.Groups, Concurrency: cfg.Concurrency}
	rec.ID = fmt.Sprintf("%s-%d-%s", keyToken(host), rec.PID, uuid.NewString()[:8])
	var kv jetstream.KeyValue
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	warned := false
	for {
		err := func() error {
			pctx, cancel := context.WithTimeout(ctx, cfg.Interval)
			defer cancel()
			if kv == nil {
				var err error
				if kv, err = Open(pctx, js, cfg.Replicas); err != nil {
					return err
				}
			}
			rec.At = cfg.Now().UTC()
			var err error
			if rec.Metrics, err = Snapshot(cfg.Gatherer, MaxRecordBytes-4096); err != nil {
				return err
			}
			b, _ := json.Marshal(rec) // plain struct
			_, err = kv.Put(pctx, rec.ID, b)
			return err
		}()
		switch {
		case err != nil && ctx.Err() == nil && !warned:
			cfg.Logger.Warn("heartbeat not written; the console will not see this worker until it is", slog.String("bucket", Bucket), slog.Any("error", err))
			warned = true
		case err == nil:
			warned = false
		}
		select {
		case <-ctx.Done():
			if kv != nil {
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				_ = kv.Delete(dctx, rec.ID)
				cancel()
			}
			return nil
		case <-t.C:
		}
	}
}

// keyToken makes a host name usable in a KV key.
func keyToken(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
	return cmp.Or(s, "worker")
}

// Snapshot writes the heartbeat's metric families of g in the text format,
// whole families only, within max bytes.
func Snapshot(g prometheus.Gatherer, max int) (string, error) {
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return "", err
	}
	var out bytes.Buffer
	for _, mf := range mfs {
		if !Families(mf.GetName()) {
			continue
		}
		var b bytes.Buffer
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			return "", err
		}
		if out.Len()+b.Len() > max {
			break
		}
		out.Write(b.Bytes())
	}
	return out.String(), nil
}

// Worker is one worker's record, its metrics parsed.
type Worker struct {
	Record
	Families map[string]*dto.MetricFamily
}

// Read returns the records of the workers alive now, by id. A bucket that
// does not exist yet means no worker has beaten yet.
func Read(ctx context.Context, js jetstream.JetStream) ([]Worker, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop() //nolint:errcheck // read-only
	var out []Worker
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-w.Updates():
			if e == nil {
				slices.SortFunc(out, func(a, b Worker) int { return strings.Compare(a.ID, b.ID) })
				return out, nil
			}
			if w, ok := parse(e.Value()); ok {
				out = append(out, w)
			}
		}
	}
}
