package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	mnetwork "github.com/moby/moby/api/types/network"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// gateway is one HTTP gateway container, on a host port fixed across
// restarts so that a client's list of gateways stays right.
type gateway struct {
	index    int
	name     string
	hostPort int
	ctr      *testcontainers.DockerContainer
}

func (g *gateway) url() string {
	return "http://" + net.JoinHostPort(testHost, strconv.Itoa(g.hostPort))
}

func (c *cluster) startGateway(ctx context.Context, t *testing.T, g *gateway) error {
	port := mnetwork.MustParsePort("8080/tcp")
	req := testcontainers.ContainerRequest{
		Image:  gatewayImage,
		Name:   fmt.Sprintf("switchyard-test-%s-%s", c.runID, g.name),
		Labels: map[string]string{"switchyard-test": c.runID},
		Env: map[string]string{
			"NATS_URL":             natsURLs(),
			"SWITCHYARD_CONFIG":    "/models.yaml",
			"SWITCHYARD_HTTP_ADDR": "0.0.0.0:8080",
			"LOG_FORMAT":           "json",
			"LOG_LEVEL":            "info",
		},
		ExposedPorts: []string{"8080/tcp"},
		Networks:     []string{c.net.Name},
		Files: []testcontainers.ContainerFile{{
			Reader: strings.NewReader(c.spec.models), ContainerFilePath: "/models.yaml", FileMode: 0o644,
		}},
		HostConfigModifier:       func(hc *container.HostConfig) { hc.PortBindings = fixedPort(port, g.hostPort) },
		EndpointSettingsModifier: c.fixedAddr(gatewayHost + g.index),
		WaitingFor:               wait.ForHTTP("/readyz").WithPort("8080/tcp").WithStartupTimeout(60 * time.Second).WithPollInterval(100 * time.Millisecond),
	}
	var err error
	g.ctr, err = c.run(ctx, t, g.name, req)
	return err
}

// sseClient is one client of scenarioGatewayRestarts: it streams one chat
// completion with an Idempotency-Key and, whenever the stream breaks, asks
// the next gateway for the rest with the key and the Last-Event-ID it got.
type sseClient struct {
	key        string
	text       strings.Builder
	lastID     string
	reconnects int
	done       bool
	err        error
}

// run streams until [DONE], an error event, or ctx's end.
func (sc *sseClient) run(ctx context.Context, gateways []*gateway, first int, body []byte) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		g := gateways[(first+attempt)%len(gateways)]
		if attempt > 0 {
			sc.reconnects++
			time.Sleep(100 * time.Millisecond)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url()+"/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			sc.err = err
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", sc.key)
		if sc.lastID != "" {
			req.Header.Set("Last-Event-ID", sc.lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue // the gateway is down or restarting: the next one
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := bufioRead(resp)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				continue
			}
			sc.err = fmt.Errorf("%s: %d %s", g.name, resp.StatusCode, b)
			return
		}
		finished := sc.read(resp)
		resp.Body.Close()
		if finished || sc.err != nil {
			return
		}
	}
}

func bufioRead(resp *http.Response) (string, error) {
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text())
	}
	return b.String(), sc.Err()
}

// read consumes one SSE response and reports whether the stream ended with
// [DONE]. An event counts (its id is kept, its delta appended) only once
// its blank line arrived: a half-received event is asked for again.
func (sc *sseClient) read(resp *http.Response) bool {
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	var id, data string
	for s.Scan() {
		line := s.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "":
			if data == "" {
				continue
			}
			if data == "[DONE]" {
				sc.done = true
				return true
			}
			var chunk struct {
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
				} `json:"choices"`
				Error *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(data), &chunk); err != nil {
				sc.err = fmt.Errorf("event %s: %w", id, err)
				return false
			}
			if chunk.Error != nil {
				sc.err = fmt.Errorf("error event %s: %s", id, chunk.Error.Message)
				return false
			}
			for _, ch := range chunk.Choices {
				sc.text.WriteString(ch.Delta.Content)
			}
			if id != "" {
				sc.lastID = id
			}
			id, data = "", ""
		}
	}
	return false
}

// scenarioGatewayRestarts: clients stream chat completions through the two
// HTTP gateways, each request with an Idempotency-Key, while the gateways
// are restarted under them (SIGTERM, and SIGKILL). A client whose stream
// broke asks the other gateway for the rest with its key and the
// Last-Event-ID it got. Every client ends with the whole answer, no token
// lost and none twice (its text equals the stored result's), and every job
// ran once.
func scenarioGatewayRestarts(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	c.waitHealthy(ctx, t)

	const clients = 40
	runID := randomID()
	var wg sync.WaitGroup
	scs := make([]*sseClient, clients)
	started := time.Now()
	for i := range clients {
		scs[i] = &sseClient{key: fmt.Sprintf("gw-%s-%03d", runID, i)}
		body, err := json.Marshal(map[string]any{
			"model": "http", "stream": true,
			"messages": []map[string]string{{"role": "user", "content": fmt.Sprintf("gateway client %d of %s", i, runID)}},
		})
		require.NoError(t, err)
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
			scs[i].run(ctx, c.gateways, i, body)
		})
	}
	// Restart the gateways under the streams: each stream lasts ~2 s and
	// they start over 4 s.
	for _, step := range []struct {
		at   time.Duration
		g    int
		kill bool
	}{{time.Second, 0, false}, {2500 * time.Millisecond, 1, true}, {4 * time.Second, 0, true}, {5500 * time.Millisecond, 1, false}} {
		time.Sleep(max(0, step.at-time.Since(started)))
		g := c.gateways[step.g]
		if step.kill {
			require.NoError(t, c.kill(ctx, g.ctr), "kill %s", g.name)
		} else {
			stop := 10 * time.Second
			require.NoError(t, g.ctr.Stop(ctx, &stop), "stop %s", g.name)
		}
		require.NoError(t, startIfStopped(ctx, g.ctr), "start %s again", g.name)
	}
	wg.Wait()

	var complete, reconnects, lost, doubled, failed int
	for _, sc := range scs {
		reconnects += sc.reconnects
		res, err := c.client.StoredResult(ctx, c.client.Subjects().Reply(sc.key))
		require.NoError(t, err)
		switch {
		case sc.err != nil || !sc.done:
			failed++
			t.Logf("client %s: did not finish: %v (text so far %q)", sc.key, sc.err, sc.text.String())
		case res == nil:
			failed++
			t.Logf("client %s: no stored result", sc.key)
		case sc.text.String() == res.Text:
			complete++
		case len(sc.text.String()) < len(res.Text):
			lost++
			t.Logf("client %s: tokens lost:\n  got  %q\n  want %q", sc.key, sc.text.String(), res.Text)
		default:
			doubled++
			t.Logf("client %s: tokens twice:\n  got  %q\n  want %q", sc.key, sc.text.String(), res.Text)
		}
	}
	// One provider call per job: a re-attach never runs the job again.
	calls, rerun := 0, 0
	for _, sc := range scs {
		res, err := c.client.StoredResult(ctx, c.client.Subjects().Reply(sc.key))
		require.NoError(t, err)
		if res != nil {
			calls += len(res.Attempts)
			if len(res.Attempts) > 1 {
				rerun++
			}
		}
	}
	c.report(t, fmt.Sprintf("scenario gateway_restarts: clients=%d complete=%d lost-tokens=%d doubled-tokens=%d failed=%d reconnects=%d provider calls=%d (jobs called more than once: %d) in %s",
		clients, complete, lost, doubled, failed, reconnects, calls, rerun, time.Since(started).Round(time.Millisecond)))
	require.Positive(t, reconnects, "the restarts broke some streams")
	require.Equal(t, clients, complete, "every client has the whole answer, once")
	require.Zero(t, rerun, "no job ran twice")
	c.requireDrained(ctx, t, "http")
}
