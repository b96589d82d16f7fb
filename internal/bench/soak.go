package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchyard/switchyard/pkg/bus"
)

// SoakConfig configures Soak. Every field but Helper has a default, stated
// on the field.
type SoakConfig struct {
	// Helper is the command line that runs a helper process (see Helper).
	// Required.
	Helper []string
	// WorkerBin is the worker binary; empty: built from ModuleDir.
	WorkerBin string
	// ModuleDir is the repository root (default ".").
	ModuleDir string
	// For is how long the load runs (default 1h), at Rate jobs per second
	// (default 20) on the worker's built-in demo group (the mock provider,
	// 40 chunks 40 ms apart: about 35 jobs in flight at 20/s).
	For  time.Duration
	Rate float64
	// Sample is the sampling interval (default 1m).
	Sample time.Duration
	// EventsMaxAge and ResultsMaxAge are the worker's retention of stored
	// events and results (defaults 5m and 10m): short enough that the
	// streams reach their steady size well inside the run, so that a
	// stream that kept growing is a finding, not the retention at work.
	EventsMaxAge, ResultsMaxAge time.Duration
	// Settle is how long after the start samples are left out of the
	// plateau check (default: ResultsMaxAge + 5m, at most half of For).
	Settle time.Duration
	// MaxGrowth is the largest growth per hour allowed on the plateau, as
	// a fraction of the series' mean there (default 0.10): the slope of a
	// least-squares line through the samples after Settle.
	MaxGrowth float64
	// PNG is where the plot is written (default soak.png).
	PNG string
}

func (c SoakConfig) withDefaults() SoakConfig {
	c.ModuleDir = cmp.Or(c.ModuleDir, ".")
	c.For = cmp.Or(c.For, time.Hour)
	c.Rate = cmp.Or(c.Rate, 20)
	c.Sample = cmp.Or(c.Sample, time.Minute)
	c.EventsMaxAge = cmp.Or(c.EventsMaxAge, 5*time.Minute)
	c.ResultsMaxAge = cmp.Or(c.ResultsMaxAge, 10*time.Minute)
	c.Settle = cmp.Or(c.Settle, min(c.ResultsMaxAge+5*time.Minute, c.For/2))
	c.MaxGrowth = cmp.Or(c.MaxGrowth, 0.10)
	c.PNG = cmp.Or(c.PNG, "soak.png")
	return c
}

// soakSample is one sample of the soak's series.
type soakSample struct {
	At                    time.Duration // since the start of the load
	WorkerRSS, NATSRSS    float64       // bytes
	Heap                  float64       // the worker's heap in use, bytes
	Goroutines            float64       // the worker's
	ResultsBytes, Results float64       // LLM_RESULTS: bytes, messages (results and events)
	Requests              float64       // LLM_REQUESTS messages (queued jobs)
	Done, Failed          int           // jobs finished so far, and failed
}

// soakSeries names the series the plateau check and the plot cover.
var soakSeries = []struct {
	name, unit string
	get        func(s soakSample) float64
}{
	{"worker RSS", "MiB", func(s soakSample) float64 { return s.WorkerRSS / (1 << 20) }},
	{"NATS server RSS", "MiB", func(s soakSample) float64 { return s.NATSRSS / (1 << 20) }},
	{"worker heap in use", "MiB", func(s soakSample) float64 { return s.Heap / (1 << 20) }},
	{"worker goroutines", "", func(s soakSample) float64 { return s.Goroutines }},
	{"LLM_RESULTS size", "MiB", func(s soakSample) float64 { return s.ResultsBytes / (1 << 20) }},
	{"LLM_RESULTS messages", "", func(s soakSample) float64 { return s.Results }},
}

// Soak runs the demo group at a steady rate for a long time with durable
// events on, samples the worker's and the NATS server's memory, the
// worker's goroutines and the streams' sizes, plots them to a PNG, and
// fails when a series did not level off (see SoakConfig.MaxGrowth) or
// jobs failed.
func Soak(ctx context.Context, cfg SoakConfig, out io.Writer) error {
	cfg = cfg.withDefaults()
	if len(cfg.Helper) == 0 {
		return errors.New("bench: SoakConfig.Helper is required")
	}
	dir, err := os.MkdirTemp("", "switchyard-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // a temp dir left behind is harmless
	sk := &soak{cfg: cfg, c: &compare{cfg: CompareConfig{Helper: cfg.Helper, WorkerBin: cfg.WorkerBin, ModuleDir: cfg.ModuleDir}, out: out, dir: dir}}
	if err := sk.start(ctx); err != nil {
		return err
	}
	defer sk.stop()
	fmt.Fprintf(out, "soak: %s at %.0f jobs/s on the demo group, durable events on (events kept %s, results %s), a sample every %s\n",
		cfg.For, cfg.Rate, cfg.EventsMaxAge, cfg.ResultsMaxAge, cfg.Sample)
	rep, samples, err := sk.run(ctx)
	if err != nil {
		return err
	}
	rep.Print(out)
	if sk.worker.Exited() {
		return fmt.Errorf("bench: the worker exited during the soak:\n%s", sk.worker.Output())
	}
	if err := plotSoak(cfg.PNG, samples, cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, "plot: %s\n", cfg.PNG)
	verdicts, ok := plateau(samples, cfg)
	for _, v := range verdicts {
		fmt.Fprintln(out, v)
	}
	if rep.Failed() > 0 {
		ok = false
		fmt.Fprintf(out, "FAIL: %d of %d jobs failed: %v\n", rep.Failed(), rep.Jobs, rep.Errors)
	}
	if !ok {
		return errors.New("bench: soak failed")
	}
	fmt.Fprintln(out, "soak: PASS (every series levelled off, no job failed)")
	return nil
}

// soak holds one Soak run: the NATS server and worker processes, and the
// jobs done so far.
type soak struct {
	cfg         SoakConfig
	c           *compare
	worker      *Proc
	metricsAddr string
	began       time.Time

	mu           sync.Mutex
	done, failed int
}

// start builds the worker if need be and starts the NATS server and a
// worker on the built-in demo group (no SWITCHYARD_CONFIG).
func (sk *soak) start(ctx context.Context) error {
	c, cfg := sk.c, sk.cfg
	var err error
	if c.cfg.WorkerBin == "" {
		if c.cfg.WorkerBin, err = buildCmd(ctx, c.out, cfg.ModuleDir, c.dir, "worker"); err != nil {
			return err
		}
	}
	if err := c.startNATS(ctx); err != nil {
		return err
	}
	if sk.metricsAddr, err = freeAddr(); err != nil {
		sk.stop()
		return err
	}
	sk.worker, err = StartProc("worker", c.cfg.WorkerBin, nil, []string{
		"NATS_URL=" + c.url,
		"SWITCHYARD_METRICS_ADDR=" + sk.metricsAddr,
		"SWITCHYARD_DATA_DIR=" + filepath.Join(c.dir, "worker-data"),
		"SWITCHYARD_DURABLE_EVENTS=true",
		"SWITCHYARD_EVENTS_MAX_AGE=" + cfg.EventsMaxAge.String(),
		"SWITCHYARD_RESULTS_MAX_AGE=" + cfg.ResultsMaxAge.String(),
		"LOG_LEVEL=warn",
		"LOG_FORMAT=text",
	})
	if err == nil {
		err = c.consumerReady(ctx, sk.worker, bus.StreamRequests, bus.ConsumerName("demo"))
	}
	if err != nil {
		sk.stop()
		return err
	}
	return nil
}

func (sk *soak) stop() {
	if sk.worker != nil {
		sk.worker.Stop(30 * time.Second)
	}
	if sk.c.nc != nil {
		sk.c.nc.Close()
	}
	if sk.c.nats != nil {
		sk.c.nats.Stop(10 * time.Second)
	}
}

// run drives the load for cfg.For while a sampler records a sample every
// cfg.Sample; a failed sample stops the load.
func (sk *soak) run(ctx context.Context) (*Report, []soakSample, error) {
	client, err := bus.NewClient(sk.c.nc)
	if err != nil {
		return nil, nil, err
	}
	job := SwitchyardJob(client, "demo", Prompt(256), true, nil)
	counted := func(ctx context.Context, i int) Outcome {
		o := job(ctx, i)
		sk.mu.Lock()
		sk.done++
		if o.Code != "" {
			sk.failed++
		}
		sk.mu.Unlock()
		return o
	}
	sk.began = time.Now()
	var samples []soakSample
	sampled := make(chan error, 1)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	go func() {
		defer close(sampled)
		tick := time.NewTicker(sk.cfg.Sample)
		defer tick.Stop()
		for {
			s, err := sk.sample(ctx)
			if err != nil {
				sampled <- fmt.Errorf("bench: soak sample at %s: %w", s.At.Round(time.Second), err)
				stopLoad()
				return
			}
			samples = append(samples, s)
			fmt.Fprintf(sk.c.out, "  %6s  worker RSS %7.1f MiB  heap %6.1f MiB  goroutines %5.0f  NATS RSS %7.1f MiB  LLM_RESULTS %7.1f MiB %8.0f msgs  queued %5.0f  jobs %d (%d failed)\n",
				s.At.Round(time.Second), s.WorkerRSS/(1<<20), s.Heap/(1<<20), s.Goroutines, s.NATSRSS/(1<<20), s.ResultsBytes/(1<<20), s.Results, s.Requests, s.Done, s.Failed)
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	jobs := int(sk.cfg.Rate*sk.cfg.For.Seconds()) + 1
	rep, err := Run(loadCtx, "soak", LoadConfig{Jobs: jobs, Rate: sk.cfg.Rate, MaxDuration: sk.cfg.For}, counted)
	stopLoad()
	if serr := <-sampled; serr != nil {
		return nil, nil, serr
	}
	return rep, samples, err
}

// sample reads the processes' RSS, the worker's runtime figures and the
// streams' sizes.
func (sk *soak) sample(ctx context.Context) (soakSample, error) {
	s := soakSample{At: time.Since(sk.began)}
	var errs []error
	var err error
	s.WorkerRSS, err = procRSS(sk.worker.Pid())
	errs = append(errs, err)
	s.NATSRSS, err = procRSS(sk.c.nats.Pid())
	errs = append(errs, err)
	s.Heap, s.Goroutines, err = scrapeRuntime(ctx, sk.metricsAddr)
	errs = append(errs, err)
	for _, name := range []string{bus.StreamResults, bus.StreamRequests} {
		st, err := sk.c.js.Stream(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		info, err := st.Info(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if name == bus.StreamResults {
			s.ResultsBytes, s.Results = float64(info.State.Bytes), float64(info.State.Msgs)
		} else {
			s.Requests = float64(info.State.Msgs)
		}
	}
	sk.mu.Lock()
	s.Done, s.Failed = sk.done, sk.failed
	sk.mu.Unlock()
	return s, errors.Join(errs...)
}

// plateau checks that every series levelled off after Settle: the slope of
// its least-squares line, per hour, is at most MaxGrowth of its mean.
func plateau(samples []soakSample, cfg SoakConfig) ([]string, bool) {
	var tail []soakSample
	for _, s := range samples {
		// After Settle, and while jobs were still being started.
		if s.At >= cfg.Settle && s.At < cfg.For {
			tail = append(tail, s)
		}
	}
	if len(tail) < 3 {
		return []string{fmt.Sprintf("FAIL: %d samples after the first %s: too few to tell a plateau", len(tail), cfg.Settle)}, false
	}
	ok := true
	var out []string
	for _, se := range soakSeries {
		xs := make([]float64, len(tail))
		ys := make([]float64, len(tail))
		for i, s := range tail {
			xs[i], ys[i] = s.At.Hours(), se.get(s)
		}
		slope, mean := leastSquares(xs, ys)
		growth := 0.0
		if mean > 0 {
			growth = slope / mean
		}
		verdict := "ok  "
		if growth > cfg.MaxGrowth {
			verdict, ok = "FAIL", false
		}
		out = append(out, fmt.Sprintf("%s %-22s mean %10.1f %-3s after %s, trend %+6.1f%%/h (allowed +%.0f%%/h)",
			verdict, se.name, mean, se.unit, cfg.Settle, 100*growth, 100*cfg.MaxGrowth))
	}
	return out, ok
}

// leastSquares returns the slope of the least-squares line through the
// points and the mean of ys.
func leastSquares(xs, ys []float64) (slope, mean float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	mean = sy / n
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, mean
	}
	return (n*sxy - sx*sy) / den, mean
}

// procRSS reads a process's resident set size (VmRSS).
func procRSS(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	kb, err := parseStatusKB(b, "VmRSS:")
	return float64(kb), err
}

// scrapeRuntime reads the worker's heap in use and goroutine count from its
// /metrics (the Go collector's go_memstats_heap_inuse_bytes and
// go_goroutines).
func scrapeRuntime(ctx context.Context, addr string) (heap, goroutines float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	get := func(name string) (float64, error) {
		f := fams[name]
		if f == nil || len(f.Metric) == 0 {
			return 0, fmt.Errorf("no %s in the worker's /metrics", name)
		}
		m := f.Metric[0]
		if m.Gauge != nil {
			return m.Gauge.GetValue(), nil
		}
		return m.GetUntyped().GetValue(), nil
	}
	heap, err1 := get("go_memstats_heap_inuse_bytes")
	goroutines, err2 := get("go_goroutines")
	return heap, goroutines, errors.Join(err1, err2)
}
