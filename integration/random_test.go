package integration

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

// The randomized schedule's knobs, read from the environment (make chaos
// sets them):
//
//	CHAOS_SEED      the seed of the schedule and of the load (default: random, printed)
//	CHAOS_DURATION  how long the load runs (default 2m; make chaos: 10m)
//	CHAOS_RATE      jobs per second (default 12)
//	CHAOS_HISTORY   where the history is written (default: a file in the temp dir, printed)
//	CHAOS_EXPECT_VIOLATIONS=1  the run must find violations (the broken build's check)
const (
	defaultChaosDuration = 2 * time.Minute
	defaultChaosRate     = 12
	chaosGrace           = time.Second // see limits.Grace
)

// chaosModels is the model file of the randomized schedule's workers: three
// groups on two deployments each, all calling the test process's provider
// mock (PROVIDER_URL), each worker naming itself in X-Worker (WORKER_ID).
func chaosModels() string {
	var b strings.Builder
	b.WriteString("groups:\n")
	for _, g := range []struct{ name, caps string }{{"chat", ""}, {"json", ", supports_json_schema: true"}, {"tools", ", supports_tools: true"}} {
		fmt.Fprintf(&b, `  %s:
    strategy: priority
    retry: {max_retries: 3, backoff: {initial: 10ms, max: 100ms}}
    breaker: {failures: 20, period: 10s, cooldown: 2s}
    timeouts: {ttft: 2s, idle: 2s}
    deployments:
`, g.name)
		for k, model := range []string{"chaos-a", "chaos-b"} {
			fmt.Fprintf(&b, "      - {name: %s-%c, provider: openai, model: %s, base_url: \"${PROVIDER_URL}\", api_key: sk-chaos, headers: {X-Worker: \"${WORKER_ID}\"}, priority: %d%s}\n",
				g.name, 'a'+k, model, k, g.caps)
		}
	}
	return b.String()
}

// chaosTenants are the randomized schedule's tenants besides the anonymous
// producer: each connects as its own NATS user of the shipped
// permissions (chaosAuth: its namespace only), and the workers serve them on their
// own streams (chaosTenantModels).
var chaosTenants = []string{"acme", "globex"}

// chaosTenantModels is the tenants' part of the workers' model file; the
// anonymous producer's jobs still run (unknown_tenants: anonymous).
func chaosTenantModels() string {
	var b strings.Builder
	b.WriteString("unknown_tenants: anonymous\ntenants:\n")
	for _, tn := range chaosTenants {
		fmt.Fprintf(&b, "  %s: {}\n", tn)
	}
	return b.String()
}

// chaosAuth is the authorization block of deployments/nats/permissions.conf
// as shipped (tenant acme, the worker, the operator, ...) with a second
// tenant, globex, added as the file says to add one: a copy of acme's
// block, and a copy of each per-tenant line of the other blocks and of
// acme's user. Every password is <role>-chaos (user switchyard-<role>).
func chaosAuth(t *testing.T) string {
	t.Helper()
	// Tests run in integration/: the module's root is its parent until
	// buildImages has found it.
	b, err := os.ReadFile(filepath.Join(cmp.Or(sourceRoot, ".."), "deployments", "nats", "permissions.conf"))
	require.NoError(t, err)
	s := string(b)
	at := strings.Index(s, "authorization {")
	require.GreaterOrEqual(t, at, 0, "permissions.conf has no authorization block")
	globex := strings.NewReplacer("acme", "globex", "ACME", "GLOBEX")
	var out []string
	var block []string // acme's block, while it is being read
	inBlock := false
	for _, l := range strings.SplitAfter(s[at:], "\n") {
		trim := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(trim, "TENANT_ACME = {"):
			inBlock = true
			block = append(block, l)
		case inBlock:
			block = append(block, l)
			if l == "  }\n" { // the block's closing brace
				inBlock = false
				out = append(out, block...)
				out = append(out, globex.Replace(strings.Join(block, "")))
			}
		default:
			out = append(out, l)
			if strings.Contains(l, "acme") && !strings.HasPrefix(trim, "#") && (strings.Contains(l, `"`) || strings.Contains(l, "user:")) {
				out = append(out, globex.Replace(l))
			}
		}
	}
	auth := regexp.MustCompile(`\$SWITCHYARD_([A-Z]+)_PASSWORD`).ReplaceAllStringFunc(strings.Join(out, ""), func(v string) string {
		return `"` + strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(v, "$SWITCHYARD_"), "_PASSWORD")) + `-chaos"`
	})
	require.Contains(t, auth, "TENANT_GLOBEX = {")
	require.Contains(t, auth, `"$JS.API.CONSUMER.MSG.NEXT.LLM_REQUESTS_globex.*"`)
	require.Contains(t, auth, `{user: switchyard-globex, password: "globex-chaos", permissions: $TENANT_GLOBEX}`)
	require.NotContains(t, auth, "$SWITCHYARD_")
	return "\n" + auth
}

// chaosTenant connects as tenant tn (user switchyard-tn, password tn-chaos, inbox
// prefix _INBOX.tn), with the test process's own ping and reconnect
// settings, so that a partitioned node holds it no longer than it holds
// the operator's connection.
func (c *cluster) chaosTenant(t *testing.T, tn string) *tenantConn {
	t.Helper()
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = "nats://" + net.JoinHostPort(testHost, strconv.Itoa(n.hostPort))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("chaos-tenant-"+tn), nats.UserInfo("switchyard-"+tn, tn+"-chaos"),
		nats.CustomInboxPrefix("_INBOX."+tn), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectBufSize(64<<20), nats.RetryOnFailedConnect(true),
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(3),
		// The snoop subscription is refused, as it must be: not an error.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	require.NoError(t, err, "connect as tenant %s", tn)
	t.Cleanup(nc.Close)
	client, err := bus.NewClient(nc, bus.WithTenant(tn))
	require.NoError(t, err)
	return &tenantConn{name: tn, nc: nc, client: client, limited: true}
}

// chaosLimits are the checker's bounds for chaosModels: 1 + max_retries
// calls per execution, and 1 + 2 executions (SWITCHYARD_VALIDATION_RETRIES)
// for the groups whose answers are validated.
func chaosLimits() limits {
	return limits{
		MaxDeliver:       maxDeliver,
		CallsPerDelivery: map[string]int{"chat": 4, "json": 4 * 3, "tools": 4 * 3},
		Grace:            chaosGrace,
		Stuck:            stuckSlack,
	}
}

// TestChaosSchedule runs the randomized fault schedule: a seeded mix of
// jobs (streamed, whole, structured, tool calls, batches, cancels,
// deadlines) against a 3-node cluster and 3 workers while faults drawn
// from the same seed hit workers, nodes, the disk and the provider, then
// checks the recorded history (see check). A failing seed reproduces its
// schedule and its load: run it again with CHAOS_SEED.
func TestChaosSchedule(t *testing.T) {
	seed := chaosSeed(t)
	run := envDuration(t, "CHAOS_DURATION", defaultChaosDuration)
	rate := defaultChaosRate
	if v := os.Getenv("CHAOS_RATE"); v != "" {
		r, err := strconv.Atoi(v)
		require.NoError(t, err, "CHAOS_RATE")
		rate = r
	}
	schedule := drawSchedule(seed, run)
	repro := fmt.Sprintf("CHAOS_SEED=%d CHAOS_DURATION=%s CHAOS_RATE=%d go test -count=1 -timeout 60m -v -run TestChaosSchedule ./integration", seed, run, rate)
	banner := fmt.Sprintf("randomized schedule: seed %d, %s at %d jobs/s\n  reproduce: %s\n%s", seed, run, rate, repro, formatSchedule(schedule))
	fmt.Print(banner)
	t.Log(banner)

	var mock *providerMock
	spec := fleetSpec{
		models:        chaosModels() + chaosTenantModels(),
		groups:        []string{"chat", "json", "tools"},
		providerNet:   true,
		diskLimit:     512 << 20,
		durableEvents: true,
		// Authentication and the tenants' permissions; the test process
		// is the operator (and the anonymous producer).
		natsAuth: chaosAuth(t), user: "switchyard-operator", password: "operator-chaos",
		tenants: chaosTenants,
		onNetworks: func(ctx context.Context, t *testing.T, c *cluster) {
			gw := c.gateway(ctx, t, c.provNet)
			var err error
			mock, err = startProviderMock(net.JoinHostPort(gw.String(), "0"), seed, 20*time.Millisecond)
			require.NoError(t, err, "provider mock on %s", gw)
			t.Cleanup(func() { _ = mock.Close() })
		},
		workerEnv: func(i int) map[string]string {
			return map[string]string{
				"PROVIDER_URL":                  mock.URL,
				"WORKER_ID":                     fmt.Sprintf("worker-%d", i+1),
				"SWITCHYARD_DURABLE_EVENTS":     "true",
				"SWITCHYARD_VALIDATION_RETRIES": "2",
				"NATS_USER":                     "switchyard-worker",
				"NATS_PASSWORD":                 "worker-chaos",
			}
		},
	}
	start := time.Now()
	c := startFleet(t, spec)
	t.Logf("fleet up in %s", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), run+10*time.Minute)
	defer cancel()
	c.waitHealthy(ctx, t)
	tenants := []*tenantConn{{name: "", nc: c.nc, client: c.client}}
	for _, tn := range chaosTenants {
		for _, g := range spec.groups {
			eventually(t, ctx, time.Minute, fmt.Sprintf("consumer of %s for tenant %s", g, tn), func(ctx context.Context) error {
				_, err := c.js.Consumer(ctx, bus.Subjects{Tenant: tn}.RequestStream(), bus.ConsumerName(g))
				return err
			})
		}
		tenants = append(tenants, c.chaosTenant(t, tn))
	}
	tr := newTraffic(c, seed, float64(rate), tenants)
	require.NoError(t, tr.observe())
	runner := &faultRunner{c: c, t: t, mock: mock}

	loadCtx, stopLoad := context.WithTimeout(ctx, run)
	defer stopLoad()
	began := time.Now()
	faultsDone := make(chan struct{})
	go func() { defer close(faultsDone); runner.run(loadCtx, began, schedule) }()
	tr.run(loadCtx, 3*time.Minute)
	<-faultsDone
	c.waitHealthy(ctx, t)
	// A result a producer saw may not be stored yet: its worker hands the
	// job back when the PubAck does not come, and it runs again.
	for _, g := range spec.groups {
		if err := c.drained(ctx, g, 2*time.Minute); err != nil {
			t.Logf("consumer of %s not drained before the count: %v", g, err)
		}
	}

	h := &history{Seed: seed, Limits: chaosLimits(), Faults: runner.windows, Calls: mock.Calls()}
	h.CrossReads = tr.crossReads(ctx, 10)
	h.Jobs, h.Stored, h.Seen = tr.collect(ctx, t)
	path := writeHistory(t, h)
	violations := check(h)
	c.report(t, fmt.Sprintf("scenario randomized(seed=%d, %s): %s", seed, run, summarize(h, violations)))
	c.report(t, "history: "+path)
	if os.Getenv("CHAOS_EXPECT_VIOLATIONS") == "1" {
		require.NotEmpty(t, violations, "the checker found nothing wrong with a build that is broken on purpose")
		t.Logf("the checker caught the broken build: %d violations, e.g.\n  %s", len(violations), strings.Join(firstViolations(violations, 10), "\n  "))
		return
	}
	if len(violations) > 0 {
		t.Fatalf("%d violations (history %s); reproduce with\n  %s\nschedule:\n%s\nfirst violations:\n  %s",
			len(violations), path, repro, formatSchedule(schedule), strings.Join(firstViolations(violations, 30), "\n  "))
	}
	require.Empty(t, runner.errs, "the fault runner could not carry out the schedule")
	require.NotEmpty(t, h.CrossReads, "no tenant tried to read another's results: the isolation check saw nothing")
	for _, tn := range chaosTenants {
		ok := 0
		for _, j := range h.Jobs {
			if j.Tenant == tn && j.Accepted && len(j.Results) > 0 && j.Results[0].Status == string(bus.StatusOK) {
				ok++
			}
		}
		require.Positive(t, ok, "tenant %s had no job answered ok: its permissions or its streams are wrong", tn)
	}
	for _, g := range spec.groups {
		c.requireDrained(ctx, t, g)
	}
}

func firstViolations(vs []violation, n int) []string {
	var out []string
	for _, v := range vs[:min(n, len(vs))] {
		out = append(out, v.String())
	}
	return out
}

// summarize prints a run's figures in the form of the other scenarios.
func summarize(h *history, vs []violation) string {
	var jobs, accepted, ok, restarted, events, fromStore, differ int
	codes := map[string]int{}
	kinds := map[string]int{}
	for _, j := range h.Jobs {
		jobs++
		kinds[j.Kind]++
		if !j.Accepted {
			continue
		}
		accepted++
		events += j.Events
		if j.MaxAttempt > 1 {
			restarted++
		}
		if len(j.Results) > 0 {
			r := j.Results[0]
			// A result published while the stream could not store it
			// reaches core subscribers; the job runs again and the stored
			// result may say something else (counted, not a violation:
			// exactly one result is stored).
			if st, ok := h.Stored[j.ID]; ok && (st.Status != r.Status || st.Code != r.Code) {
				differ++
			}
			if r.FromStore {
				fromStore++
			}
			if r.Status == string(bus.StatusOK) {
				ok++
			} else {
				codes[cmp.Or(r.Code, "?")]++
			}
		}
	}
	faults := map[faultKind]int{}
	for _, f := range h.Faults {
		faults[f.Kind]++
	}
	perJob := map[string]int{}
	faulty := 0
	for _, c := range h.Calls {
		perJob[c.Job]++
		if c.Fault != "" {
			faulty++
		}
	}
	maxCalls := 0
	for _, n := range perJob {
		maxCalls = max(maxCalls, n)
	}
	rules := map[string]int{}
	for _, v := range vs {
		rules[v.Rule]++
	}
	tenants := map[string]int{}
	for _, j := range h.Jobs {
		tenants[cmp.Or(j.Tenant, "(anonymous)")]++
	}
	refused := 0
	for _, r := range h.CrossReads {
		if !r.Got {
			refused++
		}
	}
	return fmt.Sprintf("jobs=%d accepted=%d ok=%d errors=%v restarted=%d violations=%d %v (tenants %v; cross-tenant reads %d, %d refused; kinds %v; events %d; results read from the stream %d; received results unlike the stored one %d; provider calls %d, %d of them faulty, at most %d for one job; faults %v)",
		jobs, accepted, ok, codes, restarted, len(vs), rules, tenants, len(h.CrossReads), refused, kinds, events, fromStore, differ, len(h.Calls), faulty, maxCalls, faults)
}

func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "CHAOS_SEED")
		return s
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) % 1_000_000_000
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, name)
	return d
}

// writeHistory writes h as JSON where CHAOS_HISTORY says, else into the
// temp dir (kept after the run, so that a failure can be looked into and
// checked again with TestChaosRecheck).
func writeHistory(t *testing.T, h *history) string {
	t.Helper()
	path := os.Getenv("CHAOS_HISTORY")
	if path == "" {
		path = filepath.Join(os.TempDir(), fmt.Sprintf("switchyard-chaos-%d-%s.json", h.Seed, time.Now().Format("20060102T150405")))
	}
	b, err := json.MarshalIndent(h, "", " ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

// TestChaosRecheck runs the checker on a history written by an earlier
// run (CHAOS_RECHECK=<file>); without it, it is skipped. It needs no Docker.
func TestChaosRecheck(t *testing.T) {
	path := os.Getenv("CHAOS_RECHECK")
	if path == "" {
		t.Skip("CHAOS_RECHECK names no history file")
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var h history
	require.NoError(t, json.Unmarshal(b, &h))
	vs := check(&h)
	t.Log(summarize(&h, vs))
	for _, v := range vs {
		t.Error(v)
	}
}
