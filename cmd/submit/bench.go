package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchyard/switchyard/internal/bench"
	"github.com/switchyard/switchyard/pkg/bus"
)

// benchFlags are the flags of `submit bench`.
type benchFlags struct {
	group       string
	jobs        int
	rate        float64
	concurrency int
	promptBytes int
	stream      bool
	timeout     time.Duration
	maxDuration time.Duration
	encoding    string

	compare    bool
	sections   string
	workerBin  string
	gatewayBin string
	inFlight   int
	streams    int
	directJobs int
	cancels    int
	rateFor    time.Duration
	workerConc int
	warmup     int
	rounds     int

	soak    time.Duration
	soakPNG string

	cost bool

	set map[string]bool // the flags given on the command line
}

func (f *benchFlags) define(fs *pflag.FlagSet) {
	fs.StringVarP(&f.group, "group", "g", "demo", "model `group`")
	fs.IntVarP(&f.jobs, "jobs", "n", 1000, "number of jobs (with --compare: of each full-speed run, 10000 unless set)")
	fs.Float64Var(&f.rate, "rate", 0, "jobs started per second; 0: as fast as --concurrency allows (with --compare: the fixed rate, 1000 unless set)")
	fs.IntVar(&f.concurrency, "concurrency", 64, "jobs in flight when --rate is 0")
	fs.IntVar(&f.promptBytes, "prompt-bytes", 512, "size of each prompt in bytes")
	fs.BoolVar(&f.stream, "stream", true, "ask for chunk events (--stream=false: result only, no first-chunk figures)")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "bound on one job, counted by the client")
	fs.DurationVar(&f.maxDuration, "max-duration", 10*time.Minute, "stop starting jobs after this long")
	fs.StringVar(&f.encoding, "encoding", "msgpack", "wire encoding: msgpack or json")
	fs.BoolVar(&f.compare, "compare", false, "run the local comparison: NATS server, baseline consumer and worker as child processes")
	fs.StringVar(&f.sections, "sections", "abcdlrhpf", "with --compare: a+b baseline vs Switchyard, c added latency over a direct OpenAI-compatible call, d 5,000 concurrent streams, e a worker's heap under a flood of --cancels cancels, l learned capacity (hidden capacity 40), r retry budget (a failing deployment, two workers), h hedged first tokens (a deployment 10x slower on 10% of first tokens), p interactive jobs behind a 10,000-job batch backlog, f fair share between two tenants")
	fs.IntVar(&f.cancels, "cancels", 2_000_000, "with --compare: cancels for random ids of section e")
	fs.StringVar(&f.workerBin, "worker-bin", "", "with --compare: worker binary (default: go build ./cmd/worker from the current directory)")
	fs.StringVar(&f.gatewayBin, "gateway-bin", "", "with --compare: HTTP gateway binary of section c (default: go build ./cmd/gateway)")
	fs.IntVar(&f.inFlight, "in-flight", 50, "with --compare: requests in flight in section c's CPU-per-request run")
	fs.IntVar(&f.streams, "streams", 5000, "with --compare: concurrent streams of section d")
	fs.IntVar(&f.directJobs, "direct-jobs", 300, "with --compare: sequential calls of section c")
	fs.DurationVar(&f.rateFor, "rate-for", 4*time.Second, "with --compare: length of each side's fixed-rate run (split into --rounds slices)")
	fs.IntVar(&f.workerConc, "worker-concurrency", 256, "with --compare: SWITCHYARD_CONCURRENCY of the worker, and the baseline consumer's jobs in flight")
	fs.IntVar(&f.warmup, "warmup", 1000, "with --compare: jobs run before measuring each side")
	fs.IntVar(&f.rounds, "rounds", 2, "with --compare: alternating slices in which baseline and Switchyard are measured")
	fs.DurationVar(&f.soak, "soak", 0, "run the soak for this long: NATS server and a demo worker with durable events as child processes, --rate jobs/s (20 unless set), sampled every minute; fails unless memory, goroutines and streams level off")
	fs.StringVar(&f.soakPNG, "png", "soak.png", "with --soak: where the plot of the samples is written")
	fs.BoolVar(&f.cost, "cost", false, "in this process (embedded NATS, one worker, mock priced as gpt-4o-mini): time to first chunk of --jobs cache hits (p50/p99) against a miss, and the cost of a --jobs-line batch at list and at batch prices")
}

// cmdBench is `submit bench`: a load generator against any deployment, or
// with --compare the benchmark behind `make bench`.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "--helper" {
		// A process started by --compare (NATS server, baseline consumer).
		return bench.Helper(ctx, args[1:], stderr)
	}
	var f benchFlags
	cmd := newCommand("submit bench", `submit bench [flags]            load-test a deployment (NATS_URL)
       submit bench --compare [flags]  raw JetStream baseline vs Switchyard on this machine (make bench)
       submit bench --soak 1h [flags]  a steady load on the demo group for an hour, memory and streams plotted (make soak)
       submit bench --cost [flags]     response-cache hit latency and a batch's cost with and without vendor batch prices (make bench-cost)`, `
Reports jobs/s, first-chunk latency (publish to first chunk event, measured
here) and completion latency p50/p99, and errors by code.`, stderr)
	f.define(cmd.fs)
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cmd.usageErr("submit bench takes no arguments, got %q", strings.Join(pos, " "))
	}
	f.set = map[string]bool{}
	cmd.fs.Visit(func(fl *pflag.Flag) { f.set[fl.Name] = true })
	switch {
	case f.soak > 0:
		cfg := bench.SoakConfig{WorkerBin: f.workerBin, For: f.soak, PNG: f.soakPNG}
		if f.set["rate"] {
			cfg.Rate = f.rate
		}
		return runSoak(ctx, cfg, stdout)
	case f.compare:
		return runCompare(ctx, &f, stdout)
	case f.cost:
		cfg := bench.CostConfig{PromptBytes: f.promptBytes}
		if f.set["jobs"] {
			cfg.Hits, cfg.Lines = f.jobs, f.jobs
		}
		if f.set["concurrency"] {
			cfg.Concurrency = f.concurrency
		}
		_, err := bench.Cost(ctx, cfg, stdout)
		return err
	}
	if f.jobs < 1 || f.concurrency < 1 || f.rate < 0 || f.promptBytes < 1 {
		return cmd.usageErr("--jobs, --concurrency and --prompt-bytes must be at least 1 and --rate not negative")
	}
	enc, err := parseEncoding(f.encoding)
	if err != nil {
		return cmd.usageErr("%v", err)
	}
	return runLoad(ctx, &f, enc, stdout, stderr)
}

// runCompare is `submit bench --compare`: its helper processes are this
// binary.
func runCompare(ctx context.Context, f *benchFlags, stdout io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := bench.CompareConfig{
		Helper:            []string{self, "bench", "--helper"},
		WorkerBin:         f.workerBin,
		GatewayBin:        f.gatewayBin,
		InFlight:          f.inFlight,
		Sections:          f.sections,
		Concurrency:       f.concurrency,
		PromptBytes:       f.promptBytes,
		RateFor:           f.rateFor,
		WorkerConcurrency: f.workerConc,
		Streams:           f.streams,
		DirectJobs:        f.directJobs,
		Cancels:           f.cancels,
		Warmup:            f.warmup,
		Rounds:            f.rounds,
	}
	if f.set["jobs"] {
		cfg.Jobs = f.jobs
	}
	if f.set["rate"] {
		cfg.Rate = f.rate
	}
	return bench.Compare(ctx, cfg, stdout)
}

// runLoad is `submit bench` against the fleet at NATS_URL.
func runLoad(ctx context.Context, f *benchFlags, enc bus.Encoding, stdout, stderr io.Writer) error {
	nc, c, err := dial(enc)
	if err != nil {
		return err
	}
	defer nc.Close()
	lc := bench.LoadConfig{Jobs: f.jobs, Rate: f.rate, JobTimeout: f.timeout, MaxDuration: f.maxDuration}
	mode := fmt.Sprintf("%.0f jobs/s", f.rate)
	if f.rate == 0 {
		lc.Concurrency = f.concurrency
		mode = fmt.Sprintf("full speed, %d in flight", f.concurrency)
	}
	fmt.Fprintf(stderr, "bench: %d jobs to group %s (%s), %d-byte prompts, stream=%v, %s\n", f.jobs, f.group, mode, f.promptBytes, f.stream, enc)
	rep, err := bench.Run(ctx, "group "+f.group, lc, bench.SwitchyardJob(c, f.group, bench.Prompt(f.promptBytes), f.stream, nil))
	if err != nil {
		return err
	}
	rep.Print(stdout)
	if rep.OK == 0 {
		return &exitError{1, errors.New("no job ended ok")}
	}
	return nil
}

// runSoak is `submit bench --soak`: its helper processes are this binary.
func runSoak(ctx context.Context, cfg bench.SoakConfig, stdout io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Helper = []string{self, "bench", "--helper"}
	if err := bench.Soak(ctx, cfg, stdout); err != nil {
		return &exitError{1, err}
	}
	return nil
}
