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
)

// cmdBench is `submit bench`: a load generator against any deployment, or
// with --compare the benchmark behind `make bench`.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "--helper" {
		// A process started by --compare (NATS server, baseline consumer).
		return bench.Helper(ctx, args[1:], stderr)
	}
	var (
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
	)
	cmd := newCommand("submit bench", `submit bench [flags]            load-test a deployment (NATS_URL)
       submit bench --compare [flags]  raw JetStream baseline vs Switchyard on this machine (make bench)
       submit bench --soak 1h [flags]  a steady load on the demo group for an hour, memory and streams plotted (make soak)`, `
Reports jobs/s, first-chunk latency (publish to first chunk event, measured
here) and completion latency p50/p99, and errors by code.`, stderr)
	fs := cmd.fs
	fs.StringVarP(&group, "group", "g", "demo", "model `group`")
	fs.IntVarP(&jobs, "jobs", "n", 1000, "number of jobs (with --compare: of each full-speed run, 10000 unless set)")
	fs.Float64Var(&rate, "rate", 0, "jobs started per second; 0: as fast as --concurrency allows (with --compare: the fixed rate, 1000 unless set)")
	fs.IntVar(&concurrency, "concurrency", 64, "jobs in flight when --rate is 0")
	fs.IntVar(&promptBytes, "prompt-bytes", 512, "size of each prompt in bytes")
	fs.BoolVar(&stream, "stream", true, "ask for chunk events (--stream=false: result only, no first-chunk figures)")
	fs.DurationVar(&timeout, "timeout", time.Minute, "bound on one job, counted by the client")
	fs.DurationVar(&maxDuration, "max-duration", 10*time.Minute, "stop starting jobs after this long")
	fs.StringVar(&encoding, "encoding", "msgpack", "wire encoding: msgpack or json")
	fs.BoolVar(&compare, "compare", false, "run the local comparison: NATS server, baseline consumer and worker as child processes")
	fs.StringVar(&sections, "sections", "abcd", "with --compare: a+b baseline vs Switchyard, c added latency over a direct OpenAI-compatible call, d 5,000 concurrent streams, e a worker's heap under a flood of --cancels cancels")
	fs.IntVar(&cancels, "cancels", 2_000_000, "with --compare: cancels for random ids of section e")
	fs.StringVar(&workerBin, "worker-bin", "", "with --compare: worker binary (default: go build ./cmd/worker from the current directory)")
	fs.StringVar(&gatewayBin, "gateway-bin", "", "with --compare: HTTP gateway binary of section c (default: go build ./cmd/gateway)")
	fs.IntVar(&inFlight, "in-flight", 50, "with --compare: requests in flight in section c's CPU-per-request run")
	fs.IntVar(&streams, "streams", 5000, "with --compare: concurrent streams of section d")
	fs.IntVar(&directJobs, "direct-jobs", 300, "with --compare: sequential calls of section c")
	fs.DurationVar(&rateFor, "rate-for", 4*time.Second, "with --compare: length of each side's fixed-rate run (split into --rounds slices)")
	fs.IntVar(&workerConc, "worker-concurrency", 256, "with --compare: SWITCHYARD_CONCURRENCY of the worker, and the baseline consumer's jobs in flight")
	fs.IntVar(&warmup, "warmup", 1000, "with --compare: jobs run before measuring each side")
	fs.IntVar(&rounds, "rounds", 2, "with --compare: alternating slices in which baseline and Switchyard are measured")
	fs.DurationVar(&soak, "soak", 0, "run the soak for this long: NATS server and a demo worker with durable events as child processes, --rate jobs/s (20 unless set), sampled every minute; fails unless memory, goroutines and streams level off")
	fs.StringVar(&soakPNG, "png", "soak.png", "with --soak: where the plot of the samples is written")
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cmd.usageErr("submit bench takes no arguments, got %q", strings.Join(pos, " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })

	if soak > 0 {
		cfg := bench.SoakConfig{WorkerBin: workerBin, For: soak, PNG: soakPNG}
		if set["rate"] {
			cfg.Rate = rate
		}
		return runSoak(ctx, cfg, stdout)
	}
	if compare {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cfg := bench.CompareConfig{
			Helper:            []string{self, "bench", "--helper"},
			WorkerBin:         workerBin,
			GatewayBin:        gatewayBin,
			InFlight:          inFlight,
			Sections:          sections,
			Concurrency:       concurrency,
			PromptBytes:       promptBytes,
			RateFor:           rateFor,
			WorkerConcurrency: workerConc,
			Streams:           streams,
			DirectJobs:        directJobs,
			Cancels:           cancels,
			Warmup:            warmup,
			Rounds:            rounds,
		}
		if set["jobs"] {
			cfg.Jobs = jobs
		}
		if set["rate"] {
			cfg.Rate = rate
		}
		return bench.Compare(ctx, cfg, stdout)
	}

	if jobs < 1 || concurrency < 1 || rate < 0 || promptBytes < 1 {
		return cmd.usageErr("--jobs, --concurrency and --prompt-bytes must be at least 1 and --rate not negative")
	}
	enc, err := parseEncoding(encoding)
	if err != nil {
		return cmd.usageErr("%v", err)
	}
	nc, c, err := dial(enc)
	if err != nil {
		return err
	}
	defer nc.Close()
	lc := bench.LoadConfig{Jobs: jobs, Rate: rate, JobTimeout: timeout, MaxDuration: maxDuration}
	mode := fmt.Sprintf("%.0f jobs/s", rate)
	if rate == 0 {
		lc.Concurrency = concurrency
		mode = fmt.Sprintf("full speed, %d in flight", concurrency)
	}
	fmt.Fprintf(stderr, "bench: %d jobs to group %s (%s), %d-byte prompts, stream=%v, %s\n", jobs, group, mode, promptBytes, stream, enc)
	rep, err := bench.Run(ctx, "group "+group, lc, bench.SwitchyardJob(c, group, bench.Prompt(promptBytes), stream, nil))
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
