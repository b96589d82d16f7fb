package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	mnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

// Fleet settings shared by the scenarios. AckWait is short so that a killed
// or paused worker's jobs come back within seconds.
const (
	ackWait       = 4 * time.Second
	maxDeliver    = 6
	shutdownGrace = 3 * time.Second
	// The workers' NATS_PING_INTERVAL and NATS_MAX_PINGS_OUT: a worker on a
	// cut node drops its silent connection and is on the majority within
	// pingBound (10 s; the partition scenario checks it).
	// Shorter than the default (5 s x 4) so that the cut need not last long.
	workerPingInterval = 2 * time.Second
	workerMaxPingsOut  = 2
	natsNodes          = 3
	workerCount        = 3
)

// modelsYAML is the model file of every worker. Each scenario has its own
// group, so its jobs and figures do not mix with another's.
const modelsYAML = `
groups:
  # Jobs that stream for about a second: long enough to be caught mid-stream.
  chaos:
    strategy: priority
    retry: {max_retries: 3, backoff: {initial: 10ms, max: 100ms}}
    deployments:
      - name: mock-chaos
        provider: mock
        model: mock-1
        mock: {tokens: 20, chunk_delay: 40ms}
  # A provider fault storm: 5xx, 429 with Retry-After, hangs cut by the TTFT
  # timeout and mid-stream failures. Retries are generous and the breaker is
  # off so that every job ends ok; the storm is about the fleet, not about
  # giving up. The retry budget is off too: a 45 % fault rate needs more
  # retries than its default 20 % share of calls (that is what it is for).
  storm:
    strategy: priority
    retry: {max_retries: 15, backoff: {initial: 5ms, max: 40ms}, budget: {max_rate: -1}}
    breaker: {disabled: true}
    timeouts: {ttft: 300ms}
    deployments:
      - name: mock-storm
        provider: mock
        model: mock-1
        mock:
          tokens: 20
          chunk_delay: 20ms
          error_rate: {unavailable: 0.25, rate_limited: 0.15}
          retry_after: 20ms
          hang_rate: 0.02
          mid_stream_rate: 0.05
  # Streams of about two seconds through the HTTP gateways.
  http:
    strategy: priority
    deployments:
      - name: mock-http
        provider: mock
        model: mock-1
        mock: {tokens: 40, chunk_delay: 50ms}
  # Fast jobs for the bad-input corpus.
  bad:
    strategy: priority
    deployments:
      - name: mock-bad
        provider: mock
        model: mock-1
        mock: {tokens: 5}
`

// natsConf is one cluster node's configuration. sync_interval: always fsyncs
// every write (the server's default is every 2 minutes); no_advertise keeps
// the in-network addresses out of the INFO sent to the test process, which
// reaches the nodes only through mapped ports.
func natsConf(i int) string {
	routes := make([]string, natsNodes)
	for j := range natsNodes {
		routes[j] = fmt.Sprintf("nats-route://%s:6222", natsAlias(j))
	}
	return fmt.Sprintf(`server_name: n%d
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
jetstream {
  store_dir: /data
  sync_interval: always
}
cluster {
  name: switchyard
  listen: 0.0.0.0:6222
  no_advertise: true
  routes: [%s]
}
`, i+1, strings.Join(routes, ", "))
}

func natsAlias(i int) string { return fmt.Sprintf("nats-%d", i+1) }

// node is one NATS server container.
type node struct {
	name     string // server_name, as stream cluster info names leaders
	alias    string // DNS name inside the network
	hostPort int    // client port on 127.0.0.1, fixed across restarts
	store    *disk  // the JetStream store on the host, with fleetSpec.diskLimit
	ctr      *testcontainers.DockerContainer
}

// fleetSpec says what startFleet builds. Its zero fields take the values
// of TestChaos's fleet (see defaultFleet).
type fleetSpec struct {
	// models is every worker's model file; groups are the groups whose
	// consumers must exist before the fleet is up.
	models string
	groups []string
	// workerEnv is the extra environment of worker i (0-based).
	workerEnv func(i int) map[string]string
	// providerNet puts the workers on a second network, which the NATS
	// nodes are not on: a provider mock served by the test process on that
	// network's gateway stays reachable when a worker is cut off from NATS.
	providerNet bool
	// diskLimit, when positive, gives each node a store of that many bytes
	// (a tmpfs on the host, bind-mounted on /data) that the test can fill:
	// the disk-full fault.
	diskLimit int64
	// durableEvents provisions the results stream with the events subjects
	// (the workers then need SWITCHYARD_DURABLE_EVENTS=true).
	durableEvents bool
	// gateways is the number of HTTP gateway containers.
	gateways int
	// onNetworks runs once the networks exist, before any container
	// starts: where a server of the test process that the workers call
	// is started (see cluster.gateway).
	onNetworks func(ctx context.Context, t *testing.T, c *cluster)
	// natsAuth, when set, is appended to every node's configuration (an
	// authorization block); the test process then connects as user (with
	// password), which must be allowed everything (an operator), and
	// provisions the tenants' streams too.
	natsAuth       string
	user, password string
	tenants        []string
}

func defaultFleet() fleetSpec {
	return fleetSpec{
		models: modelsYAML, groups: []string{"chaos", "storm", "bad", "http"},
		// The gateways' Last-Event-ID resume reads stored events.
		durableEvents: true, gateways: 2,
		workerEnv: func(int) map[string]string { return map[string]string{"SWITCHYARD_DURABLE_EVENTS": "true"} },
	}
}

// cluster is the system under test: 3 NATS nodes, 3 workers, and the test
// process's connection to all NATS nodes.
type cluster struct {
	runID    string
	spec     fleetSpec
	docker   *testcontainers.DockerClient
	net      *testcontainers.DockerNetwork
	subnet   netip.Prefix                  // of net (see fixedAddr)
	provNet  *testcontainers.DockerNetwork // with spec.providerNet
	nodes    []*node
	workers  []*testcontainers.DockerContainer
	gateways []*gateway

	nc     *nats.Conn
	js     jetstream.JetStream
	client *bus.Client

	summary []string // each scenario's figures, printed again at the end
}

// report prints a scenario's figures and keeps them for the summary.
func (c *cluster) report(t *testing.T, line string) {
	t.Helper()
	fmt.Println(line)
	t.Log(line)
	c.summary = append(c.summary, line)
}

// startCluster builds TestChaos's fleet.
func startCluster(t *testing.T) *cluster { return startFleet(t, defaultFleet()) }

// startFleet builds the whole fleet and registers its removal with
// t.Cleanup, which runs even when the test fails.
func startFleet(t *testing.T, spec fleetSpec) *cluster {
	t.Helper()
	if err := images(t); err != nil {
		t.Fatalf("integration suite setup (Docker and image builds): %v", err)
	}
	require.NoError(t, statSources(sourceRoot), "stat the sources the images are built from")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	def := defaultFleet()
	if spec.models == "" {
		spec = def
	}

	c := &cluster{runID: randomID(), spec: spec}
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	require.NoError(t, err, "docker client")
	t.Cleanup(func() { docker.Close() })
	c.docker = docker

	c.net, c.subnet = newNetwork(ctx, t, c.runID)
	if spec.providerNet {
		c.provNet, _ = newNetwork(ctx, t, c.runID)
	}
	if spec.onNetworks != nil {
		spec.onNetworks(ctx, t, c)
	}

	// Fixed host ports, restart-safe (see natstest.FixedPorts): a node's
	// client port, a gateway's HTTP port.
	ports := natstest.FixedPorts(t, natsNodes)
	c.nodes = make([]*node, natsNodes)
	for i := range natsNodes {
		c.nodes[i] = &node{name: fmt.Sprintf("n%d", i+1), alias: natsAlias(i), hostPort: ports[i]}
		if spec.diskLimit > 0 {
			c.nodes[i].store = newDisk(t, spec.diskLimit)
		}
	}
	parallel(t, natsNodes, func(i int) error { return c.startNode(ctx, t, c.nodes[i]) })
	for _, n := range c.nodes {
		// /varz lists JetStream's settings once JetStream is up, a moment
		// after the monitoring port answers.
		eventually(t, ctx, 30*time.Second, n.name+" fsyncs every write (sync_interval: always)", func(ctx context.Context) error {
			on, err := syncAlways(ctx, n)
			if err == nil && !on {
				err = errors.New("/varz says sync_always is off")
			}
			return err
		})
	}

	urls := make([]string, natsNodes)
	for i, n := range c.nodes {
		urls[i] = fmt.Sprintf("nats://%s", net.JoinHostPort(testHost, strconv.Itoa(n.hostPort)))
	}
	nc, err := nats.Connect(strings.Join(urls, ","),
		nats.Name("switchyard-integration"),
		nats.UserInfo(spec.user, spec.password),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectBufSize(64<<20),
		nats.RetryOnFailedConnect(true),
		// A partitioned node's connection stalls rather than closes: the
		// test process notices within seconds and moves to another node,
		// so that its own connection is not what a scenario measures.
		nats.PingInterval(time.Second),
		nats.MaxPingsOutstanding(3),
	)
	require.NoError(t, err, "connect to the NATS cluster")
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, err = jetstream.New(nc)
	require.NoError(t, err)
	c.client, err = bus.NewClient(nc)
	require.NoError(t, err)

	// Provision the R3 streams before the workers start: creating an R3
	// stream needs all three peers in the meta group, which takes a moment
	// after the servers start.
	eventually(t, ctx, 60*time.Second, "provision R3 streams", func(ctx context.Context) error {
		return bus.Provision(ctx, c.js, bus.StreamsConfig{Replicas: natsNodes, DurableEvents: spec.durableEvents, Tenants: spec.tenants})
	})

	c.workers = make([]*testcontainers.DockerContainer, workerCount)
	parallel(t, workerCount, func(i int) error {
		w, err := c.startWorker(ctx, t, i)
		c.workers[i] = w
		return err
	})
	if spec.gateways > 0 {
		ports := natstest.FixedPorts(t, spec.gateways)
		c.gateways = make([]*gateway, spec.gateways)
		for i := range c.gateways {
			c.gateways[i] = &gateway{index: i, name: fmt.Sprintf("gateway-%d", i+1), hostPort: ports[i]}
		}
		parallel(t, spec.gateways, func(i int) error { return c.startGateway(ctx, t, c.gateways[i]) })
	}
	// Every group's consumer exists once the workers are ready.
	for _, g := range spec.groups {
		eventually(t, ctx, 30*time.Second, "consumer of "+g, func(ctx context.Context) error {
			_, err := c.js.Consumer(ctx, bus.StreamRequests, bus.ConsumerName(g))
			return err
		})
	}
	return c
}

func (c *cluster) startNode(ctx context.Context, t *testing.T, n *node) error {
	clientPort := mnetwork.MustParsePort("4222/tcp")
	req := testcontainers.ContainerRequest{
		Image:          natsImage,
		Name:           fmt.Sprintf("switchyard-test-%s-%s", c.runID, n.alias),
		Cmd:            []string{"-c", "/nats.conf"},
		ExposedPorts:   []string{"4222/tcp", "8222/tcp"},
		Networks:       []string{c.net.Name},
		NetworkAliases: map[string][]string{c.net.Name: {n.alias}},
		Labels:         map[string]string{"switchyard-test": c.runID},
		Files: []testcontainers.ContainerFile{{
			Reader: strings.NewReader(natsConf(nodeIndex(n)) + c.spec.natsAuth), ContainerFilePath: "/nats.conf", FileMode: 0o644,
		}},
		// A fixed host port, so that the client's URL list stays right when
		// the node is stopped and started again.
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.PortBindings = fixedPort(clientPort, n.hostPort)
			if n.store != nil {
				hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: n.store.dir, Target: "/data"})
			}
		},
		EndpointSettingsModifier: c.fixedAddr(nodeHost + nodeIndex(n)),
		WaitingFor:               wait.ForHTTP("/varz").WithPort("8222/tcp").WithStartupTimeout(30 * time.Second).WithPollInterval(100 * time.Millisecond),
	}
	var err error
	n.ctr, err = c.run(ctx, t, n.alias, req)
	return err
}

// run starts a container of the fleet and registers its removal (also when
// it did not start).
func (c *cluster) run(ctx context.Context, t *testing.T, what string, req testcontainers.ContainerRequest) (*testcontainers.DockerContainer, error) {
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	dc, _ := ctr.(*testcontainers.DockerContainer)
	if dc != nil {
		c.registerRemoval(t, dc)
	}
	if err != nil {
		return dc, fmt.Errorf("start %s: %w", what, err)
	}
	return dc, nil
}

// fixedPort binds a container port to a fixed host port (on the loopback
// interface when the test reaches containers there), so that addresses the
// test process holds stay right when the container is stopped and started
// again.
func fixedPort(port mnetwork.Port, hostPort int) mnetwork.PortMap {
	b := mnetwork.PortBinding{HostPort: strconv.Itoa(hostPort)}
	if ip, err := netip.ParseAddr(testHost); err == nil && ip.IsLoopback() {
		b.HostIP = ip
	}
	return mnetwork.PortMap{port: {b}}
}

// natsURLs is the cluster's URL list as containers on its network see it.
func natsURLs() string {
	urls := make([]string, natsNodes)
	for j := range natsNodes {
		urls[j] = fmt.Sprintf("nats://%s:4222", natsAlias(j))
	}
	return strings.Join(urls, ",")
}

// syncAlways reads the node's /varz and reports whether JetStream fsyncs
// every write.
func syncAlways(ctx context.Context, n *node) (bool, error) {
	ep, err := n.ctr.PortEndpoint(ctx, "8222/tcp", "http")
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/varz", nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var varz struct {
		JetStream struct {
			Config struct {
				SyncAlways bool `json:"sync_always"`
			} `json:"config"`
		} `json:"jetstream"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&varz); err != nil {
		return false, err
	}
	return varz.JetStream.Config.SyncAlways, nil
}

func nodeIndex(n *node) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(n.name, "n"))
	return i - 1
}

func (c *cluster) startWorker(ctx context.Context, t *testing.T, i int) (*testcontainers.DockerContainer, error) {
	env := map[string]string{
		"NATS_URL":                  natsURLs(),
		"SWITCHYARD_CONFIG":         "/models.yaml",
		"SWITCHYARD_CONCURRENCY":    "64",
		"SWITCHYARD_REPLICAS":       strconv.Itoa(natsNodes),
		"SWITCHYARD_ACK_WAIT":       ackWait.String(),
		"SWITCHYARD_MAX_DELIVER":    strconv.Itoa(maxDeliver),
		"SWITCHYARD_SHUTDOWN_GRACE": shutdownGrace.String(),
		"SWITCHYARD_METRICS_ADDR":   ":9090",
		"NATS_PING_INTERVAL":        workerPingInterval.String(),
		"NATS_MAX_PINGS_OUT":        strconv.Itoa(workerMaxPingsOut),
		"LOG_FORMAT":                "json",
		"LOG_LEVEL":                 "info",
	}
	if c.spec.workerEnv != nil {
		maps.Copy(env, c.spec.workerEnv(i))
	}
	networks := []string{c.net.Name}
	if c.provNet != nil {
		networks = append(networks, c.provNet.Name)
	}
	req := testcontainers.ContainerRequest{
		Image:        workerImage,
		Name:         fmt.Sprintf("switchyard-test-%s-worker-%d", c.runID, i+1),
		Labels:       map[string]string{"switchyard-test": c.runID},
		Env:          env,
		ExposedPorts: []string{"9090/tcp"},
		Networks:     networks,
		Files: []testcontainers.ContainerFile{{
			Reader: strings.NewReader(c.spec.models), ContainerFilePath: "/models.yaml", FileMode: 0o644,
		}},
		// A crashing worker is restarted by Docker, so that a crash shows
		// up as RestartCount > 0 rather than as a fleet that shrinks.
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 5}
		},
		EndpointSettingsModifier: c.fixedAddr(workerHost + i),
		WaitingFor:               wait.ForHTTP("/readyz").WithPort("9090/tcp").WithStartupTimeout(60 * time.Second).WithPollInterval(100 * time.Millisecond),
	}
	return c.run(ctx, t, fmt.Sprintf("worker %d", i+1), req)
}

// registerRemoval removes the container at the end of the test, first
// printing the tail of its log when the test failed. SWITCHYARD_KEEP_LOGS=1
// keeps every container's whole log (keepLog) of a run that passed too,
// to read how a fault played out.
func (c *cluster) registerRemoval(t *testing.T, ctr *testcontainers.DockerContainer) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if t.Failed() {
			logTail(ctx, t, ctr, 40)
		}
		if t.Failed() || os.Getenv("SWITCHYARD_KEEP_LOGS") != "" {
			c.keepLog(ctx, t, ctr)
		}
		// A container left paused by a failed scenario cannot be stopped.
		if st, err := ctr.State(ctx); err == nil && st.Paused {
			_, _ = c.docker.ContainerUnpause(ctx, ctr.GetContainerID(), client.ContainerUnpauseOptions{})
		}
		if err := ctr.Terminate(ctx, testcontainers.StopTimeout(2*time.Second)); err != nil {
			t.Logf("remove container %s: %v", ctr.GetContainerID(), err)
		}
	})
}

// keepLog writes the container's whole log into a directory of the run
// under the temp dir, which is kept: a failed scenario's 40 printed lines
// rarely reach back to the fault.
func (c *cluster) keepLog(ctx context.Context, t *testing.T, ctr *testcontainers.DockerContainer) {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "switchyard-integration-"+c.runID)
	name := ctr.GetContainerID()
	if info, err := ctr.Inspect(ctx); err == nil {
		name = strings.TrimPrefix(info.Name, "/")
	}
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return
	}
	defer rc.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, rc); err == nil {
		t.Logf("whole log of %s: %s", name, f.Name())
	}
}

func logTail(ctx context.Context, t *testing.T, ctr *testcontainers.DockerContainer, n int) {
	t.Helper()
	name := ctr.GetContainerID()
	if info, err := ctr.Inspect(ctx); err == nil {
		name = info.Name
	}
	rc, err := ctr.Logs(ctx)
	if err != nil {
		t.Logf("logs of %s: %v", name, err)
		return
	}
	defer rc.Close()
	var lines []string
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	t.Logf("last %d log lines of %s:\n%s", len(lines), name, strings.Join(lines, "\n"))
}

// kill sends SIGKILL: the process gets no chance to hand jobs back.
func (c *cluster) kill(ctx context.Context, ctr *testcontainers.DockerContainer) error {
	_, err := c.docker.ContainerKill(ctx, ctr.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"})
	return err
}

// pauseAttempts bounds the pauses tried when the engine could not freeze
// the container (see pause).
const pauseAttempts = 3

// pause freezes the container (docker pause). The engine's cgroup v1
// freezer (runc 1.1 here) writes FROZEN up to 1000 times while a task of
// the container is still FREEZING (one in uninterruptible sleep, a thread
// racing the freezer on a loaded machine: "still a game of chances, so
// failures are possible", runc's maintainers in opencontainers/runc#2791),
// then thaws the cgroup back and fails with "unable to freeze". The
// container then runs on unpaused and nothing was faulted yet, so the pause
// is tried again, and only then: if the failed attempt left the container
// paused or stopped, or the error is any other, the pause fails.
func (c *cluster) pause(ctx context.Context, ctr *testcontainers.DockerContainer) error {
	for attempt := 1; ; attempt++ {
		_, err := c.docker.ContainerPause(ctx, ctr.GetContainerID(), client.ContainerPauseOptions{})
		if err == nil || attempt == pauseAttempts || !strings.Contains(err.Error(), "unable to freeze") {
			return err
		}
		st, serr := ctr.State(ctx)
		if serr != nil {
			return fmt.Errorf("%w (and its state: %w)", err, serr)
		}
		if st.Paused || !st.Running {
			return fmt.Errorf("%w, and it left the container %s", err, st.Status)
		}
		fmt.Printf("integration: docker pause %s: %v; the container runs on, unpaused: pausing again\n", ctr.GetContainerID()[:12], err)
	}
}

func (c *cluster) unpause(ctx context.Context, ctr *testcontainers.DockerContainer) error {
	_, err := c.docker.ContainerUnpause(ctx, ctr.GetContainerID(), client.ContainerUnpauseOptions{})
	return err
}

// workerStates returns each worker's Docker restart count and whether it is
// running, so that a scenario can tell a worker that crashed from one that
// survived.
func (c *cluster) workerStates(ctx context.Context, t *testing.T) (restarts []int, running []bool) {
	t.Helper()
	for _, w := range c.workers {
		in, err := w.Inspect(ctx)
		require.NoError(t, err)
		restarts = append(restarts, in.RestartCount)
		running = append(running, in.State != nil && in.State.Running && !in.State.Paused)
	}
	return restarts, running
}

// streamLeader returns the node that leads the stream's Raft group.
func (c *cluster) streamLeader(ctx context.Context, stream string) (*node, error) {
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, errors.New("stream has no leader")
	}
	for _, n := range c.nodes {
		if n.name == info.Cluster.Leader {
			return n, nil
		}
	}
	return nil, fmt.Errorf("leader %q is not one of the nodes", info.Cluster.Leader)
}

// waitHealthy waits until every node is running, every stream has a leader
// and all its replicas are current, and every worker is ready: the state a
// scenario starts from and must leave behind.
func (c *cluster) waitHealthy(ctx context.Context, t *testing.T) {
	t.Helper()
	eventually(t, ctx, 60*time.Second, "cluster healthy", func(ctx context.Context) error {
		if err := c.natsHealthy(ctx); err != nil {
			return err
		}
		return c.workersRunning(ctx)
	})
}

// natsHealthy reports why the NATS side is not whole, or nil: every node
// running with JetStream on, every stream led, all its replicas current.
func (c *cluster) natsHealthy(ctx context.Context) error {
	for _, n := range c.nodes {
		st, err := n.ctr.State(ctx)
		if err != nil {
			return err
		}
		if !st.Running {
			return fmt.Errorf("node %s is not running", n.name)
		}
		if on, err := c.jetStreamEnabled(ctx, n); err != nil || !on {
			return fmt.Errorf("node %s has no JetStream (%v)", n.name, err)
		}
	}
	for _, name := range []string{bus.StreamRequests, bus.StreamResults, bus.StreamDLQ} {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("stream %s has no leader", name)
		}
		if len(info.Cluster.Replicas) != natsNodes-1 {
			return fmt.Errorf("stream %s has %d followers", name, len(info.Cluster.Replicas))
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("stream %s replica %s is not current", name, r.Name)
			}
		}
	}
	return nil
}

// workersRunning reports why a worker is not running, or nil.
func (c *cluster) workersRunning(ctx context.Context) error {
	for i, w := range c.workers {
		st, err := w.State(ctx)
		if err != nil {
			return err
		}
		if !st.Running || st.Paused {
			return fmt.Errorf("worker %d is not running", i+1)
		}
	}
	return nil
}

// parallel runs fn for 0..n-1 at once and fails the test with every error.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
}

// eventually retries fn until it succeeds or timeout passes, failing the
// test with fn's last error.
func eventually(t *testing.T, ctx context.Context, timeout time.Duration, what string, fn func(ctx context.Context) error) {
	t.Helper()
	if err := pollUntil(ctx, timeout, 5*time.Second, 200*time.Millisecond, fn); err != nil {
		t.Fatalf("%s: not reached within %s: %v", what, timeout, err)
	}
}

// pollUntil runs probe every `every` until it reports nil, for up to
// window, and returns nil or the last error it reported. Each probe has
// its own timeout: after a fault, a request can go out on a connection the
// fault left stale (an HTTP keep-alive to a node's monitoring port, the
// test's NATS connection to a node that was cut off) and never be
// answered. With the window's context alone one such probe would use the
// whole window; this way it costs one probe, the next goes out afresh, and
// the error returned is the last thing that was wrong, not the window's end.
func pollUntil(ctx context.Context, window, perProbe, every time.Duration, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	var last error
	for {
		pctx, cancelProbe := context.WithTimeout(ctx, perProbe)
		err := probe(pctx)
		cancelProbe()
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err // not the window's own end
		}
		if !sleepUntil(ctx, time.Now().Add(every)) {
			return last
		}
	}
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
