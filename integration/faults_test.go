package integration

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
)

// newNetwork creates a bridge network with a subnet of its own choosing: a
// container cut off from it (a partition) is re-attached with the address
// it had, and Docker keeps a requested address only on a network whose
// subnet was given at creation. Its removal is registered with t.Cleanup.
func newNetwork(ctx context.Context, t *testing.T, runID string) (*testcontainers.DockerNetwork, netip.Prefix) {
	t.Helper()
	var last error
	for range 8 {
		// 10.213.0.0/16 is far from Docker's default pools (172.17-31/16,
		// 192.168/16); a /24 in it that another network holds is refused
		// and another one is drawn.
		third := rand.IntN(256)
		subnet := netip.MustParsePrefix(fmt.Sprintf("10.213.%d.0/24", third))
		// The gateway is the host's address on the network (see gateway).
		gw := netip.MustParseAddr(fmt.Sprintf("10.213.%d.1", third))
		nw, err := tcnetwork.New(ctx,
			tcnetwork.WithLabels(map[string]string{"switchyard-test": runID}),
			tcnetwork.WithIPAM(&network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gw}}}),
		)
		if err != nil {
			last = err
			continue
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := nw.Remove(ctx); err != nil {
				t.Logf("remove network %s: %v", nw.Name, err)
			}
		})
		return nw, subnet
	}
	t.Fatalf("docker network: %v", last)
	return nil, netip.Prefix{}
}

// Host numbers of the containers on the fleet's network: each container
// has a fixed address, so that the address of a container cut off (a
// partition) is not handed to another one started meanwhile (a worker
// restarted by the schedule took a cut-off node's address once, and the
// node could not be attached again).
const (
	nodeHost    = 10 // + node index
	workerHost  = 20 // + worker index
	gatewayHost = 30 // + gateway index
)

// fixedAddr gives a container the address host on the fleet's network.
func (c *cluster) fixedAddr(host int) func(map[string]*network.EndpointSettings) {
	a := c.subnet.Addr().As4()
	a[3] = byte(host)
	ip := netip.AddrFrom4(a)
	return func(eps map[string]*network.EndpointSettings) {
		if ep := eps[c.net.Name]; ep != nil {
			ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
		}
	}
}

// gateway returns the host's address on a network: where a server of the
// test process is reachable from the containers on it.
func (c *cluster) gateway(ctx context.Context, t *testing.T, nw *testcontainers.DockerNetwork) netip.Addr {
	t.Helper()
	res, err := c.docker.NetworkInspect(ctx, nw.ID, client.NetworkInspectOptions{})
	require.NoError(t, err, "inspect network %s", nw.Name)
	for _, cfg := range res.Network.IPAM.Config {
		if cfg.Gateway.IsValid() {
			return cfg.Gateway
		}
	}
	t.Fatalf("network %s has no gateway", nw.Name)
	return netip.Addr{}
}

// partition cuts a container off the fleet's network (the NATS nodes and,
// on a fleet without a provider network, everything else) and returns the
// function that heals it: the container is attached again with the address
// and DNS aliases it had, so that connections that stalled resume, as they
// do when a real partition heals, instead of being reset.
func (c *cluster) partition(ctx context.Context, ctr *testcontainers.DockerContainer) (heal func(context.Context) error, err error) {
	in, err := ctr.Inspect(ctx)
	if err != nil {
		return nil, err
	}
	var ep *network.EndpointSettings
	if in.NetworkSettings != nil {
		ep = in.NetworkSettings.Networks[c.net.Name]
	}
	if ep == nil || !ep.IPAddress.IsValid() {
		return nil, fmt.Errorf("container %s is not on network %s", in.Name, c.net.Name)
	}
	ip, aliases := ep.IPAddress, ep.Aliases
	if _, err := c.docker.NetworkDisconnect(ctx, c.net.ID, client.NetworkDisconnectOptions{Container: ctr.GetContainerID()}); err != nil {
		return nil, fmt.Errorf("disconnect %s: %w", in.Name, err)
	}
	return func(ctx context.Context) error {
		_, err := c.docker.NetworkConnect(ctx, c.net.ID, client.NetworkConnectOptions{
			Container: ctr.GetContainerID(),
			EndpointConfig: &network.EndpointSettings{
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip},
				Aliases:    aliases,
			},
		})
		if err != nil {
			return fmt.Errorf("reconnect %s: %w", in.Name, err)
		}
		return nil
	}, nil
}

// disk is a NATS node's JetStream store: a tmpfs of a fixed size mounted on
// the host and bind-mounted into the node, so that the test can fill it
// (the disk-full fault) by writing a ballast file next to the store, and
// free it by removing the file. Mounting needs root, as the Docker engine
// does.
type disk struct {
	dir     string // the mount point, /data in the node
	ballast string
}

func newDisk(t *testing.T, size int64) *disk {
	t.Helper()
	dir := t.TempDir()
	// The node runs as 65532 (deployments/nats/Dockerfile).
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,uid=65532,gid=65532,mode=0755", size), "tmpfs", dir).CombinedOutput()
	require.NoError(t, err, "mount a tmpfs store for the disk-full fault (needs root): %s", out)
	t.Cleanup(func() {
		// After the containers are gone (cleanups run last in, first out,
		// and the containers are registered later).
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return &disk{dir: dir, ballast: filepath.Join(dir, "ballast")}
}

// fill writes the ballast until the file system is full and reports how
// much it wrote.
func (d *disk) fill() (int64, error) {
	f, err := os.OpenFile(d.ballast, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// free removes the ballast.
func (d *disk) free() error {
	err := os.Remove(d.ballast)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// jetStreamEnabled reads the node's /varz: a node whose store filled up
// disables JetStream ("JetStream out of resources, will be DISABLED") until
// it is restarted.
func (c *cluster) jetStreamEnabled(ctx context.Context, n *node) (bool, error) {
	ep, err := n.ctr.PortEndpoint(ctx, "8222/tcp", "http")
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/jsz", nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var jsz struct {
		Disabled bool `json:"disabled"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		return false, fmt.Errorf("decode /jsz of %s: %w", n.name, err)
	}
	return !jsz.Disabled, nil
}

// connections says which node each worker (and the test process) is
// connected to, from every node's /connz: which clients a cut node takes
// with it.
func (c *cluster) connections(ctx context.Context) string {
	m, err := c.monitor(ctx)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, n := range c.nodes {
		if _, ok := m.urls[n]; !ok {
			continue
		}
		who, err := m.clientsOf(ctx, n)
		if err != nil {
			out = append(out, n.name+": "+err.Error())
			continue
		}
		out = append(out, fmt.Sprintf("%s: %v", n.name, who))
	}
	return strings.Join(out, "; ")
}

// monitor is what reading the nodes' /connz needs from Docker, read once:
// each node's monitoring URL and each worker's address. A scenario takes
// it before a fault, since Docker's API can take seconds to answer while
// it rewires a network, and a cut node's mapped ports are gone.
type monitor struct {
	urls map[*node]string
	ipOf map[string]string // worker address -> "worker-2"
}

func (c *cluster) monitor(ctx context.Context) (*monitor, error) {
	m := &monitor{urls: map[*node]string{}, ipOf: map[string]string{}}
	for i, w := range c.workers {
		in, err := w.Inspect(ctx)
		if err != nil {
			return nil, fmt.Errorf("inspect worker %d: %w", i+1, err)
		}
		if in.NetworkSettings != nil {
			if ep := in.NetworkSettings.Networks[c.net.Name]; ep != nil {
				m.ipOf[ep.IPAddress.String()] = fmt.Sprintf("worker-%d", i+1)
			}
		}
	}
	for _, n := range c.nodes {
		ep, err := n.ctr.PortEndpoint(ctx, "8222/tcp", "http")
		if err != nil {
			continue // a stopped or cut node
		}
		m.urls[n] = ep
	}
	return m, nil
}

// clientsOf names the clients connected to node n, from its /connz, sorted:
// a worker by its container ("worker-2"), any other client by its
// connection name.
func (m *monitor) clientsOf(ctx context.Context, n *node) ([]string, error) {
	ep, ok := m.urls[n]
	if !ok {
		return nil, fmt.Errorf("%s has no monitoring endpoint", n.name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/connz", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var connz struct {
		Conns []struct {
			IP   string `json:"ip"`
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&connz); err != nil {
		return nil, fmt.Errorf("decode /connz of %s: %w", n.name, err)
	}
	var who []string
	for _, cn := range connz.Conns {
		who = append(who, cmp.Or(m.ipOf[cn.IP], cn.Name))
	}
	slices.Sort(who)
	return who, nil
}
