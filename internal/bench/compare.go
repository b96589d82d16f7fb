package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/procgroup"
	"github.com/switchyard/switchyard/pkg/bus"
)

// CompareConfig configures Compare. Every field but Helper has a default,
// stated on the field; the defaults are sized for a 2-core machine and keep
// the whole run under about two minutes.
type CompareConfig struct {
	// Helper is the command line that runs a helper process (see Helper)
	// when the role and its flags are appended, e.g. the submit binary
	// followed by "bench", "--helper". Required.
	Helper []string
	// WorkerBin is the worker binary. Empty: it is built from ModuleDir
	// with `go build ./cmd/worker` into a temporary directory.
	WorkerBin string
	// GatewayBin is the HTTP gateway binary, for section c's HTTP path.
	// Empty: built like WorkerBin from ./cmd/gateway.
	GatewayBin string
	// ModuleDir is the repository root (default ".").
	ModuleDir string
	// Sections selects the parts to run, any of "abcdelrhpf" (default
	// "abcdlrhpf"): a+b baseline vs Switchyard, c added latency over a
	// direct call, d concurrent slow streams, e a worker's heap under a
	// cancel flood, l learned capacity, r the retry budget across two
	// workers, h hedged first tokens (see hedge.go), p priority classes
	// behind a batch backlog, f fair share between two tenants (see
	// sched.go). The throughput ratio needs a and
	// b.
	Sections string

	// Jobs is the number of jobs of each full-speed run (default 10000),
	// Concurrency the jobs in flight then (default 64), and Warmup the jobs
	// run before measuring each side (default 1000).
	Jobs, Concurrency, Warmup int
	// Rate and RateFor shape the fixed-rate runs (default 1000 jobs/s for
	// 4s).
	Rate    float64
	RateFor time.Duration
	// Rounds is the number of alternating slices in which sections a and b
	// are measured (default 2): each side runs Jobs/Rounds jobs at full
	// speed and RateFor/Rounds at the fixed rate per round.
	Rounds int
	// PromptBytes is the size of each prompt (default 512) and Tokens the
	// chunks of each answer (default 20).
	PromptBytes, Tokens int
	// WorkerConcurrency is SWITCHYARD_CONCURRENCY of the worker and the
	// baseline consumer's jobs in flight (default 256).
	WorkerConcurrency int

	// DirectJobs is the number of sequential calls of section c (default
	// 300); DirectRate and DirectFor shape its fixed-rate runs (default 300
	// jobs/s for 3s); InFlightJobs are run InFlight at a time to measure
	// the CPU per request (default 2000 jobs, 50 in flight).
	DirectJobs   int
	DirectRate   float64
	DirectFor    time.Duration
	InFlight     int
	InFlightJobs int

	// Streams is the number of concurrent slow streams of section d
	// (default 5000), each StreamTokens chunks (default 200) StreamDelay
	// apart (default 50ms).
	Streams, StreamTokens int
	StreamDelay           time.Duration

	// Cancels is the number of cancels for random ids of section e, the
	// cancel flood (default 2,000,000).
	Cancels int
	// Sched sizes sections p and f.
	Sched SchedConfig
}

func (c CompareConfig) withDefaults() CompareConfig {
	c.ModuleDir = cmp.Or(c.ModuleDir, ".")
	c.Sections = cmp.Or(c.Sections, "abcdlrhpf")
	c.Jobs = cmp.Or(c.Jobs, 10000)
	c.Concurrency = cmp.Or(c.Concurrency, 64)
	c.Warmup = cmp.Or(c.Warmup, 1000)
	c.Rate = cmp.Or(c.Rate, 1000)
	c.RateFor = cmp.Or(c.RateFor, 4*time.Second)
	c.Rounds = max(cmp.Or(c.Rounds, 2), 1)
	c.PromptBytes = cmp.Or(c.PromptBytes, 512)
	c.Tokens = cmp.Or(c.Tokens, 20)
	c.WorkerConcurrency = cmp.Or(c.WorkerConcurrency, 256)
	c.DirectJobs = cmp.Or(c.DirectJobs, 300)
	c.DirectRate = cmp.Or(c.DirectRate, 300)
	c.DirectFor = cmp.Or(c.DirectFor, 3*time.Second)
	c.InFlight = cmp.Or(c.InFlight, 50)
	c.InFlightJobs = cmp.Or(c.InFlightJobs, 2000)
	c.Streams = cmp.Or(c.Streams, 5000)
	c.StreamTokens = cmp.Or(c.StreamTokens, 200)
	c.StreamDelay = cmp.Or(c.StreamDelay, 50*time.Millisecond)
	c.Cancels = cmp.Or(c.Cancels, 2_000_000)
	c.Sched = c.Sched.withDefaults()
	return c
}

func (c CompareConfig) has(section byte) bool {
	for i := range len(c.Sections) {
		if c.Sections[i] == section {
			return true
		}
	}
	return false
}

// side is the figures of one process under one load: the load report
// and the CPU time of the process, of the NATS server and of this client
// process during the runs, and the process's peak RSS after them.
type side struct {
	rep       *Report
	cpu       time.Duration
	alsoCPU   time.Duration // of the other processes measured with it (the gateway)
	natsCPU   time.Duration
	clientCPU time.Duration
	rss       int64
}

func (s side) cpuPerJob() time.Duration { return perJob(s.cpu, s.rep.OK) }

// add merges another run of the same workload into s.
func (s *side) add(o side) {
	if s.rep == nil {
		s.rep = NewReport(o.rep.Name)
	}
	s.rep.Merge(o.rep)
	s.cpu += o.cpu
	s.alsoCPU += o.alsoCPU
	s.natsCPU += o.natsCPU
	s.clientCPU += o.clientCPU
	s.rss = max(s.rss, o.rss)
}

// target is a process that serves jobs and the client function that
// submits one.
type target struct {
	p  *Proc
	fn JobFunc
}

// compare holds the state of one Compare run.
type compare struct {
	cfg  CompareConfig
	out  io.Writer
	dir  string
	nats *Proc
	url  string
	nc   *nats.Conn
	js   jetstream.JetStream

	// base and sy are the full-speed [0] and fixed-rate [1] figures of
	// sections a and b.
	base, sy [2]side
	// viaOpenAI submits a job to the worker's group on the local
	// OpenAI-compatible server (section c).
	viaOpenAI JobFunc
	// gateway is the HTTP gateway process of section c, in front of the
	// same worker, at gatewayURL.
	gateway    *Proc
	gatewayURL string
	// goals are the figures measured against issue #21's targets, printed
	// at the end (see printGoals).
	goals []goal
	// metrics is the metrics address of each worker started, by name.
	metrics map[string]string
}

// Compare runs the benchmark and prints its figures to out. Its last line
// is "throughput ratio: R" when sections a and b ran.
func Compare(ctx context.Context, cfg CompareConfig, out io.Writer) (err error) {
	cfg = cfg.withDefaults()
	if len(cfg.Helper) == 0 {
		return errors.New("bench: CompareConfig.Helper is required")
	}
	dir, err := os.MkdirTemp("", "switchyard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // a temp dir left behind is harmless
	c := &compare{cfg: cfg, out: out, dir: dir}
	for _, b := range []struct {
		bin  *string
		name string
		need bool
	}{{&c.cfg.WorkerBin, "worker", true}, {&c.cfg.GatewayBin, "gateway", cfg.has('c')}} {
		if *b.bin != "" || !b.need {
			continue
		}
		if *b.bin, err = buildCmd(ctx, out, cfg.ModuleDir, dir, b.name); err != nil {
			return err
		}
	}
	if err := c.startNATS(ctx); err != nil {
		return err
	}
	defer func() {
		c.nc.Close()
		c.nats.Stop(10 * time.Second)
	}()
	fmt.Fprintf(out, "machine: %d CPUs (shared: other processes may be loading it); NATS server, worker and baseline consumer are separate processes\n", numCPU())

	if cfg.has('a') || cfg.has('b') || cfg.has('c') {
		if err := c.sectionsABC(ctx); err != nil {
			return err
		}
	}
	if cfg.has('d') {
		if err := c.streams(ctx); err != nil {
			return err
		}
	}
	if cfg.has('e') {
		if err := c.cancelFlood(ctx); err != nil {
			return err
		}
	}
	if err := c.scheduling(ctx); err != nil {
		return err
	}
	if cfg.has('p') {
		if err := c.priority(ctx); err != nil {
			return err
		}
	}
	if cfg.has('f') {
		if err := c.fairness(ctx); err != nil {
			return err
		}
	}
	if c.base[1].rep != nil && !c.cfg.has('c') {
		// Section c prints the round trip under its own loads instead.
		r := c.base[1].rep
		c.goals = append(c.goals, reference(fmt.Sprintf("raw JetStream baseline (a) first chunk at %.0f jobs/s, p50 / p99", c.cfg.Rate),
			ms(r.FirstChunk.Quantile(.5))+" / "+ms(r.FirstChunk.Quantile(.99))))
	}
	printGoals(out, c.goals)
	if c.base[0].rep != nil && c.sy[0].rep != nil {
		c.summary(c.base, c.sy)
	}
	return nil
}

// buildCmd builds ./cmd/<name> of the module at moduleDir into dir and
// returns the binary's path. The go build dies with this process, compile
// and link processes with it when ctx is cancelled (procgroup).
func buildCmd(ctx context.Context, out io.Writer, moduleDir, dir, name string) (string, error) {
	fmt.Fprintf(out, "building the %s (go build ./cmd/%s) ...\n", name, name)
	bin := filepath.Join(dir, name)
	cmd := procgroup.Command(ctx, "go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = moduleDir
	if b, err := procgroup.Run(cmd.CombinedOutput); err != nil {
		return "", fmt.Errorf("bench: build %s: %w\n%s", name, err, b)
	}
	return bin, nil
}

func numCPU() int {
	b, err := os.ReadFile("/sys/fs/cgroup/cpu.max")
	if err == nil {
		var quota, period int
		if n, _ := fmt.Sscanf(string(b), "%d %d", &quota, &period); n == 2 && period > 0 {
			return max(1, quota/period)
		}
	}
	return runtime.NumCPU()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close() //nolint:errcheck // only the free port was wanted
	return ln.Addr().String(), nil
}

func (c *compare) helper(name string, args ...string) (*Proc, error) {
	full := append(append([]string{}, c.cfg.Helper[1:]...), args...)
	return StartProc(name, c.cfg.Helper[0], full, nil)
}

func (c *compare) startNATS(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := c.helper("nats-server", "nats", "-addr", addr, "-store", filepath.Join(c.dir, "js"))
	if err != nil {
		return err
	}
	c.nats, c.url = p, "nats://"+addr
	err = p.WaitFor(ctx, 20*time.Second, "client port", func() bool {
		nc, err := nats.Connect(c.url, nats.Name("bench-client"))
		if err != nil {
			return false
		}
		c.nc = nc
		return true
	})
	if err != nil {
		p.Stop(time.Second)
		return err
	}
	c.js, err = jetstream.New(c.nc)
	return err
}

// consumerReady waits until a consumer has a pull request waiting, i.e. its
// process consumes.
func (c *compare) consumerReady(ctx context.Context, p *Proc, stream, consumer string) error {
	return p.WaitFor(ctx, 30*time.Second, "pull request on "+stream+"/"+consumer, func() bool {
		cons, err := c.js.Consumer(ctx, stream, consumer)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumWaiting > 0
	})
}

// measure runs a load against a process and reads the CPU times (of p, of
// the also processes together, of the NATS server and of this one) and p's
// peak RSS.
func (c *compare) measure(ctx context.Context, p *Proc, name string, lc LoadConfig, fn JobFunc, also ...*Proc) (side, error) {
	alsoCPU := func() (time.Duration, error) {
		var sum time.Duration
		for _, a := range also {
			d, err := a.CPU()
			if err != nil {
				return 0, err
			}
			sum += d
		}
		return sum, nil
	}
	cpu0, err1 := p.CPU()
	ncpu0, err2 := c.nats.CPU()
	ccpu0, err3 := ProcCPU(os.Getpid())
	acpu0, err4 := alsoCPU()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return side{}, err
	}
	rep, err := Run(ctx, name, lc, fn)
	if err != nil {
		return side{}, err
	}
	cpu1, err1 := p.CPU()
	ncpu1, err2 := c.nats.CPU()
	ccpu1, err3 := ProcCPU(os.Getpid())
	acpu1, err4 := alsoCPU()
	rss, err5 := p.PeakRSS()
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return side{}, err
	}
	return side{rep: rep, cpu: cpu1 - cpu0, alsoCPU: acpu1 - acpu0, natsCPU: ncpu1 - ncpu0, clientCPU: ccpu1 - ccpu0, rss: rss}, nil
}

// print writes a side's figures.
func (c *compare) print(p *Proc, s side) {
	s.rep.Print(c.out)
	also := ""
	if s.alsoCPU > 0 {
		also = fmt.Sprintf(", gateway %s", ms(perJob(s.alsoCPU, s.rep.OK)))
	}
	fmt.Fprintf(c.out, "  CPU per job: %s %s%s, NATS server %s, this bench process (client; in c also the SSE server) %s; %s peak RSS %s\n",
		p.Name, ms(s.cpuPerJob()), also, ms(perJob(s.natsCPU, s.rep.OK)), ms(perJob(s.clientCPU, s.rep.OK)), p.Name, mib(s.rss))
	if s.rep.Failed() > 0 {
		fmt.Fprintf(c.out, "  WARNING: %d jobs failed\n", s.rep.Failed())
	}
}

func perJob(d time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// startWorker starts a worker on the given model file.
func (c *compare) startWorker(ctx context.Context, name, models string, concurrency int, groups ...string) (*Proc, error) {
	p, _, err := c.startWorkerMetrics(ctx, name, models, concurrency, bus.Subjects{}, nil, groups...)
	return p, err
}

// startWorkerMetrics starts a worker on the given model file, with env
// added to its environment, and waits for it to pull the groups' jobs of
// ns's tenant; it returns the worker's metrics address too.
func (c *compare) startWorkerMetrics(ctx context.Context, name, models string, concurrency int, ns bus.Subjects, env []string, groups ...string) (*Proc, string, error) {
	path := filepath.Join(c.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(models), 0o600); err != nil {
		return nil, "", err
	}
	metrics, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	if c.metrics == nil {
		c.metrics = map[string]string{}
	}
	c.metrics[name] = metrics
	p, err := StartProc(name, c.cfg.WorkerBin, nil, append([]string{
		"NATS_URL=" + c.url,
		"SWITCHYARD_CONFIG=" + path,
		"SWITCHYARD_CONCURRENCY=" + strconv.Itoa(concurrency),
		"SWITCHYARD_METRICS_ADDR=" + metrics,
		"SWITCHYARD_DATA_DIR=" + filepath.Join(c.dir, name+"-data"),
		"LOG_LEVEL=warn",
		"LOG_FORMAT=text",
	}, env...))
	if err != nil {
		return nil, "", err
	}
	for _, g := range groups {
		if err := c.consumerReady(ctx, p, ns.RequestStream(), bus.ConsumerName(g)); err != nil {
			p.Stop(5 * time.Second)
			return nil, "", err
		}
	}
	return p, metrics, nil
}

// sectionsABC runs the baseline consumer and the worker side by side and
// measures them in alternating slices (Rounds of each load per side), so
// that a change in the machine's other load during the run hits both sides
// alike; then section c on the same worker.
func (c *compare) sectionsABC(ctx context.Context) error {
	prompt := Prompt(c.cfg.PromptBytes)
	var base, sy target
	if c.cfg.has('a') {
		if err := ProvisionBaseline(ctx, c.js); err != nil {
			return err
		}
		p, err := c.helper("baseline consumer", "baseline", "-nats", c.url, "-concurrency", strconv.Itoa(c.cfg.WorkerConcurrency), "-tokens", strconv.Itoa(c.cfg.Tokens))
		if err != nil {
			return err
		}
		defer p.Stop(10 * time.Second)
		if err := c.consumerReady(ctx, p, BaselineRequests, baselineConsumer); err != nil {
			return err
		}
		fn, err := BaselineJob(c.nc, c.cfg.PromptBytes)
		if err != nil {
			return err
		}
		base = target{p: p, fn: fn}
	}
	var sse *SSEServer
	if c.cfg.has('b') || c.cfg.has('c') {
		models := fmt.Sprintf(`
groups:
  bench:
    deployments:
      - name: mock
        provider: mock
        model: mock-1
        mock: {tokens: %d}
`, c.cfg.Tokens)
		groups := []string{"bench"}
		if c.cfg.has('c') {
			var err error
			if sse, err = StartSSEServer(c.cfg.Tokens); err != nil {
				return err
			}
			defer sse.Close() //nolint:errcheck // test server teardown
			models += fmt.Sprintf(`
  oai:
    deployments:
      - name: local-openai
        provider: openai
        base_url: %s
        api_key: sk-bench
        model: gpt-4o-mini
`, sse.URL)
			groups = append(groups, "oai")
		}
		p, err := c.startWorker(ctx, "worker", models, c.cfg.WorkerConcurrency, groups...)
		if err != nil {
			return err
		}
		defer p.Stop(30 * time.Second)
		client, err := bus.NewClient(c.nc)
		if err != nil {
			return err
		}
		sy = target{p: p, fn: SwitchyardJob(client, "bench", prompt, true, nil)}
		if c.cfg.has('c') {
			c.viaOpenAI = SwitchyardJob(client, "oai", prompt, true, nil)
			if err := c.startGateway(ctx, filepath.Join(c.dir, "worker.yaml")); err != nil {
				return err
			}
			defer c.gateway.Stop(30 * time.Second)
		}
	}
	if c.cfg.has('a') || c.cfg.has('b') {
		if err := c.alternate(ctx, base, sy); err != nil {
			return err
		}
	}
	if c.cfg.has('c') {
		return c.direct(ctx, sy.p, base, sse, prompt)
	}
	return nil
}

// alternate measures sections a and b.
func (c *compare) alternate(ctx context.Context, base, sy target) error {
	var sides []*target
	var names []string
	if base.p != nil {
		sides, names = append(sides, &base), append(names, "baseline")
	}
	if sy.p != nil {
		sides, names = append(sides, &sy), append(names, "switchyard")
	}
	for i, t := range sides {
		if _, err := Run(ctx, "warm-up "+names[i], LoadConfig{Jobs: c.cfg.Warmup, Concurrency: c.cfg.Concurrency}, t.fn); err != nil {
			return err
		}
	}
	rounds := c.cfg.Rounds
	full := LoadConfig{Jobs: max(c.cfg.Jobs/rounds, 1), Concurrency: c.cfg.Concurrency, JobTimeout: 30 * time.Second, MaxDuration: time.Minute}
	slice := c.cfg.RateFor / time.Duration(rounds)
	rate := LoadConfig{Jobs: max(int(c.cfg.Rate*slice.Seconds()), 1), Rate: c.cfg.Rate, JobTimeout: 30 * time.Second, MaxDuration: slice + 5*time.Second}
	var got [2][2]side // [side][full, rate]
	for range rounds {
		for mode, lc := range []LoadConfig{full, rate} {
			for i, t := range sides {
				s, err := c.measure(ctx, t.p, names[i], lc, t.fn)
				if err != nil {
					return err
				}
				got[i][mode].add(s)
			}
		}
	}
	fmt.Fprintf(c.out, "(measured in %d alternating slices per side and load; figures merged)\n", rounds)
	for i, t := range sides {
		switch names[i] {
		case "baseline":
			fmt.Fprintf(c.out, "\n== (a) raw JetStream baseline: %d-byte request to a work-queue stream, consumer publishes %d chunks + 1 stored result, acks\n", c.cfg.PromptBytes, c.cfg.Tokens)
		default:
			fmt.Fprintf(c.out, "\n== (b) Switchyard: bus client -> worker -> mock provider (zero delay, %d tokens), %d-byte prompt, msgpack\n", c.cfg.Tokens, c.cfg.PromptBytes)
		}
		got[i][0].rep.Name = names[i] + " full speed"
		got[i][1].rep.Name = fmt.Sprintf("%s at %.0f jobs/s", names[i], c.cfg.Rate)
		c.print(t.p, got[i][0])
		c.print(t.p, got[i][1])
		if names[i] == "baseline" {
			c.base = got[i]
		} else {
			c.sy = got[i]
		}
	}
	return nil
}

// startGateway runs the HTTP gateway on the worker's model file and waits
// until it is ready.
func (c *compare) startGateway(ctx context.Context, models string) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := StartProc("gateway", c.cfg.GatewayBin, nil, []string{
		"NATS_URL=" + c.url,
		"SWITCHYARD_CONFIG=" + models,
		"SWITCHYARD_HTTP_ADDR=" + addr,
		"LOG_LEVEL=warn",
		"LOG_FORMAT=text",
	})
	if err != nil {
		return err
	}
	c.gateway, c.gatewayURL = p, "http://"+addr
	hc := &http.Client{Timeout: time.Second}
	return p.WaitFor(ctx, 30*time.Second, "gateway /readyz", func() bool {
		resp, err := hc.Get(c.gatewayURL + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Targets of the HTTP path (issue #14), printed beside the figures.
const (
	targetGatewayP50     = 500 * time.Microsecond
	targetGatewayP99     = 1500 * time.Microsecond
	targetGatewayRateP99 = 3 * time.Millisecond
	targetGatewayCPU     = 500 * time.Microsecond
)

// directFns are the jobs of section c: the direct call, the same call
// through the bus client and through the HTTP gateway, and the raw
// JetStream baseline (nil when section a's consumer does not run).
type directFns struct {
	direct, via, gateway, raw JobFunc
}

// directRun is what one load of section c measured, over every round.
type directRun struct {
	d          *Report
	dcpu       time.Duration
	raw, s, gw side
}

func (c *compare) direct(ctx context.Context, p *Proc, base target, sse *SSEServer, prompt string) error {
	fmt.Fprintf(c.out, "\n== (c) added latency: local OpenAI-compatible SSE server (%d chunks, no delay): direct openai-go call, vs the same call through Switchyard's bus client (provider openai), vs the same openai-go call to the HTTP gateway (gateway -> NATS -> worker -> server), beside section a's raw JetStream round trip under the same load\n", c.cfg.Tokens)
	fns := directFns{direct: DirectJob(sse.URL, "gpt-4o-mini", prompt), via: c.viaOpenAI, gateway: DirectJob(c.gatewayURL+"/v1", "oai", prompt), raw: base.fn}
	warm := LoadConfig{Jobs: min(c.cfg.Warmup, 100), Concurrency: 4}
	for _, fn := range []JobFunc{fns.direct, fns.via, fns.gateway, fns.raw} {
		if fn == nil {
			continue
		}
		if _, err := Run(ctx, "warm-up", warm, fn); err != nil {
			return err
		}
	}
	rounds := c.cfg.Rounds
	seq := LoadConfig{Jobs: max(c.cfg.DirectJobs/rounds, 1), Concurrency: 1, JobTimeout: 10 * time.Second, MaxDuration: time.Minute}
	slice := c.cfg.DirectFor / time.Duration(rounds)
	rate := LoadConfig{Jobs: max(int(c.cfg.DirectRate*slice.Seconds()), 1), Rate: c.cfg.DirectRate, JobTimeout: 10 * time.Second, MaxDuration: slice + 5*time.Second}
	inflight := LoadConfig{Jobs: max(c.cfg.InFlightJobs/rounds, 1), Concurrency: c.cfg.InFlight, JobTimeout: 10 * time.Second, MaxDuration: time.Minute}
	for kind, run := range []struct {
		name string
		lc   LoadConfig
	}{{"sequential", seq}, {fmt.Sprintf("at %.0f jobs/s", c.cfg.DirectRate), rate}, {fmt.Sprintf("%d in flight", c.cfg.InFlight), inflight}} {
		r, err := c.directRounds(ctx, p, base.p, run.name, run.lc, fns)
		if err != nil {
			return err
		}
		c.directPrint(kind, run.name, p, base.p, r)
	}
	return nil
}

// directRounds measures one load of section c: the direct, bus, gateway
// and raw runs alternate in Rounds slices, as in a and b.
func (c *compare) directRounds(ctx context.Context, p, baseP *Proc, name string, lc LoadConfig, fns directFns) (directRun, error) {
	r := directRun{d: NewReport("direct " + name)}
	for range c.cfg.Rounds {
		cpu0, err := ProcCPU(os.Getpid())
		if err != nil {
			return r, err
		}
		rep, err := Run(ctx, r.d.Name, lc, fns.direct)
		if err != nil {
			return r, err
		}
		cpu1, err := ProcCPU(os.Getpid())
		if err != nil {
			return r, err
		}
		r.d.Merge(rep)
		r.dcpu += cpu1 - cpu0
		o, err := c.measure(ctx, p, "bus client "+name, lc, fns.via)
		if err != nil {
			return r, err
		}
		r.s.add(o)
		if o, err = c.measure(ctx, p, "HTTP gateway "+name, lc, fns.gateway, c.gateway); err != nil {
			return r, err
		}
		r.gw.add(o)
		if fns.raw != nil {
			if o, err = c.measure(ctx, baseP, "raw JetStream baseline "+name, lc, fns.raw); err != nil {
				return r, err
			}
			r.raw.add(o)
		}
	}
	return r, nil
}

// directPrint writes one load's figures of section c and adds them to the
// targets block.
func (c *compare) directPrint(kind int, name string, p, baseP *Proc, r directRun) {
	d, s, g := r.d, r.s, r.gw
	d.Print(c.out)
	fmt.Fprintf(c.out, "  CPU per job: client + SSE server (this process) %s\n", ms(perJob(r.dcpu, d.OK)))
	c.print(p, s)
	c.print(p, g)
	if r.raw.rep != nil {
		c.print(baseP, r.raw)
	}
	for _, q := range []float64{.5, .99} {
		dq := d.FirstChunk.Quantile(q)
		raw := ""
		if r.raw.rep != nil {
			raw = "  raw JetStream " + ms(r.raw.rep.FirstChunk.Quantile(q))
		}
		fmt.Fprintf(c.out, "  TTFT p%-2.0f direct %s  via bus %s (added %s)  via HTTP gateway %s (added %s)%s\n", q*100,
			ms(dq), ms(s.rep.FirstChunk.Quantile(q)), ms(s.rep.FirstChunk.Quantile(q)-dq),
			ms(g.rep.FirstChunk.Quantile(q)), ms(g.rep.FirstChunk.Quantile(q)-dq), raw)
	}
	c.gatewayTargets(kind, name, d, &g)
	// Worker and NATS server together: what the issue measured as the
	// worker with its embedded server (here the server is a separate
	// process and also serves the bench client, so this is an upper bound).
	busCPU := perJob(s.cpu+s.natsCPU, s.rep.OK)
	fmt.Fprintf(c.out, "  worker CPU per job via bus %s; worker + NATS server %s\n", ms(s.cpuPerJob()), ms(busCPU))
	c.goals = append(c.goals, busGoals(kind, name, d, s.rep, busCPU)...)
	if r.raw.rep != nil {
		c.goals = append(c.goals, rawGoal(name, r.raw.rep))
	}
}

// rawGoal is the raw JetStream round trip (section a's consumer: a
// request to a work-queue stream, its first chunk back) under one load of
// section c: the floor the bus path's figures stand on, printed for
// reference.
func rawGoal(load string, raw *Report) goal {
	return reference("raw JetStream first chunk p50 / p99, "+load, ms(raw.FirstChunk.Quantile(.5))+" / "+ms(raw.FirstChunk.Quantile(.99)))
}

// gatewayTargets prints the HTTP gateway's figures of one load of section
// c (kind 0: sequential, 1: fixed rate, 2: in flight) beside their targets
// and adds them to the targets block.
func (c *compare) gatewayTargets(kind int, load string, d *Report, g *side) {
	gs := gatewayGoals(kind, load, d, g.rep, perJob(g.cpu+g.alsoCPU, g.rep.OK))
	for _, x := range gs {
		fmt.Fprintf(c.out, "  %s: %s (target %s: %s)\n", x.name, x.got, cmp.Or(x.target, "none"), x.verdict())
	}
	if kind == 2 {
		fmt.Fprintf(c.out, "  HTTP gateway CPU per request %s, worker %s\n", ms(perJob(g.alsoCPU, g.rep.OK)), ms(g.cpuPerJob()))
	}
	c.goals = append(c.goals, gs...)
}

// gatewayGoals are the HTTP path's figures of one load of section c (issue
// #14's targets): the gateway's added time to first token over the direct
// call, and the gateway's and worker's CPU per request together (cpu).
func gatewayGoals(kind int, load string, direct, gw *Report, cpu time.Duration) []goal {
	add := func(q float64) time.Duration { return gw.FirstChunk.Quantile(q) - direct.FirstChunk.Quantile(q) }
	name := func(what string) string { return fmt.Sprintf("HTTP gateway: %s, %s", what, load) }
	switch kind {
	case 0:
		return []goal{
			atMost(name("added TTFT p50"), add(.5), targetGatewayP50),
			atMost(name("added TTFT p99"), add(.99), targetGatewayP99),
		}
	case 1:
		return []goal{
			reference(name("added TTFT p50"), ms(add(.5))),
			atMost(name("added TTFT p99"), add(.99), targetGatewayRateP99),
		}
	default:
		return []goal{atMost(name("gateway + worker CPU per request"), cpu, targetGatewayCPU)}
	}
}

// busGoals are issue #21's figures of one load of section c (kind 0:
// sequential, 1: fixed rate, 2: in flight): the bus path's added time to
// first token over the direct call, its throughput beside the direct
// call's, and the worker's and NATS server's CPU per job.
func busGoals(kind int, load string, direct, bus *Report, cpu time.Duration) []goal {
	add := func(q float64) time.Duration { return bus.FirstChunk.Quantile(q) - direct.FirstChunk.Quantile(q) }
	name := func(what string) string { return fmt.Sprintf("bus: %s, %s", what, load) }
	switch kind {
	case 0:
		return []goal{
			atMost(name("added TTFT p50"), add(.5), targetBusSeqP50),
			atMost(name("added TTFT p99"), add(.99), targetBusSeqP99),
			reference(name("worker + NATS CPU per job"), ms(cpu)),
		}
	case 1:
		return []goal{
			reference(name("added TTFT p50"), ms(add(.5))),
			atMost(name("added TTFT p99"), add(.99), targetBusRateP99),
			atMost(name("worker + NATS CPU per job"), cpu, targetCPURate),
		}
	default:
		part := 0.0
		if d := direct.JobsPerSec(); d > 0 {
			part = bus.JobsPerSec() / d
		}
		return []goal{
			atLeast(name("throughput / direct call's"), part, targetInFlightPart, fmt.Sprintf("%.0f / %.0f jobs/s", bus.JobsPerSec(), direct.JobsPerSec())),
			atMost(name("worker + NATS CPU per job"), cpu, targetCPUInFlight),
		}
	}
}

func (c *compare) streams(ctx context.Context) error {
	n := c.cfg.Streams
	fmt.Fprintf(c.out, "\n== (d) %d concurrent streams, %d chunks each %s apart (mock), one worker with SWITCHYARD_CONCURRENCY=%d\n", n, c.cfg.StreamTokens, c.cfg.StreamDelay, n)
	models := fmt.Sprintf(`
groups:
  slow:
    deployments:
      - name: mock-slow
        provider: mock
        model: mock-1
        mock: {tokens: %d, chunk_delay: %s}
`, c.cfg.StreamTokens, c.cfg.StreamDelay)
	p, err := c.startWorker(ctx, "worker-streams", models, n, "slow")
	if err != nil {
		return err
	}
	defer p.Stop(30 * time.Second)
	client, err := bus.NewClient(c.nc)
	if err != nil {
		return err
	}
	// Each job's goroutine writes only its own slot, so no lock is needed.
	last := make([]time.Time, n)
	lag := NewHistogram()
	onChunk := func(i int, at time.Time) {
		if !last[i].IsZero() {
			lag.Record(max(at.Sub(last[i])-c.cfg.StreamDelay, 0))
		}
		last[i] = at
	}
	fn := SwitchyardJob(client, "slow", Prompt(c.cfg.PromptBytes), true, onChunk)
	expect := time.Duration(c.cfg.StreamTokens) * c.cfg.StreamDelay
	lc := LoadConfig{Jobs: n, Concurrency: n, JobTimeout: expect + time.Minute, MaxDuration: time.Minute}
	s, err := c.measure(ctx, p, "streams", lc, fn)
	if err != nil {
		return err
	}
	c.print(p, s)
	fmt.Fprintf(c.out, "  chunk lag (gap between chunks minus %s) over %d gaps: p50 %s  p99 %s  max %s (target p99 < 50ms)\n",
		c.cfg.StreamDelay, lag.Count(), ms(lag.Quantile(.5)), ms(lag.Quantile(.99)), ms(lag.Max()))
	fmt.Fprintf(c.out, "  worker peak RSS %s (target < 1 GiB)\n", mib(s.rss))
	return nil
}

func (c *compare) summary(base, sy [2]side) {
	fmt.Fprintf(c.out, "\n== summary (b / a)\n")
	fmt.Fprintf(c.out, "%-26s %10s %12s %12s %14s %12s\n", "", "jobs/s", "1st chunk p50", "p99", "worker CPU/job", "peak RSS")
	row := func(name string, s side) {
		fmt.Fprintf(c.out, "%-26s %10.1f %12s %12s %14s %12s\n", name, s.rep.JobsPerSec(), ms(s.rep.FirstChunk.Quantile(.5)), ms(s.rep.FirstChunk.Quantile(.99)), ms(s.cpuPerJob()), mib(s.rss))
	}
	row("baseline full speed", base[0])
	row("switchyard full speed", sy[0])
	row(fmt.Sprintf("baseline %.0f/s", c.cfg.Rate), base[1])
	row(fmt.Sprintf("switchyard %.0f/s", c.cfg.Rate), sy[1])
	fmt.Fprintf(c.out, "first-chunk p99 at %.0f jobs/s: switchyard - baseline = %s (target <= 0.5ms)\n", c.cfg.Rate,
		ms(sy[1].rep.FirstChunk.Quantile(.99)-base[1].rep.FirstChunk.Quantile(.99)))
	ratio := 0.0
	if a := base[0].rep.JobsPerSec(); a > 0 {
		ratio = sy[0].rep.JobsPerSec() / a
	}
	fmt.Fprintf(c.out, "throughput ratio: %.2f\n", ratio)
}
