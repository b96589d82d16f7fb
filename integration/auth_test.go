package integration

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

// tenantAuth is the authorization block of examples/multitenant/nats.conf
// (tenants acme and globex, the worker and the operator, passwords
// <user>-dev), plus a third tenant, mallory, made from globex's block as
// deployments/nats/permissions.conf says to add a tenant: its own block,
// and the worker's per-tenant lines.
func tenantAuth(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sourceRoot, "examples", "multitenant", "nats.conf"))
	require.NoError(t, err)
	s := string(b)
	auth := s[strings.Index(s, "authorization {"):]
	blockAt, workerAt, opAt := strings.Index(auth, "  # --- Tenant globex"), strings.Index(auth, "  # --- Workers"), strings.Index(auth, "  # --- Operators")
	require.True(t, blockAt > 0 && workerAt > blockAt && opAt > workerAt, "the example's nats.conf changed shape")
	mallory := strings.NewReplacer("globex", "mallory", "GLOBEX", "MALLORY").Replace(auth[blockAt:workerAt])
	var worker []string
	for _, l := range strings.SplitAfter(auth[workerAt:opAt], "\n") {
		worker = append(worker, l)
		if strings.Contains(l, `_globex`) && strings.Contains(l, `"`) {
			worker = append(worker, strings.ReplaceAll(l, "_globex", "_mallory"))
		}
	}
	rest := strings.Replace(auth[opAt:], "  users: [\n", "  users: [\n    {user: mallory, password: mallory-dev, permissions: $MALLORY}\n", 1)
	require.Contains(t, rest, "mallory-dev")
	return "\n" + auth[:workerAt] + mallory + strings.Join(worker, "") + rest
}

// authConn is one user's connection to the cluster.
type authConn struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	c      *bus.Client
	denied atomic.Int64 // permission violations the server reported
}

func (c *cluster) connectAs(t *testing.T, user string) *authConn {
	t.Helper()
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = "nats://" + net.JoinHostPort(testHost, strconv.Itoa(n.hostPort))
	}
	tc := &authConn{}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("tenant-"+user), nats.UserInfo(user, user+"-dev"),
		nats.CustomInboxPrefix("_INBOX."+user), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				tc.denied.Add(1)
			}
		}))
	require.NoError(t, err, "connect as %s", user)
	t.Cleanup(nc.Close)
	tc.nc = nc
	tc.js, err = jetstream.New(nc)
	require.NoError(t, err)
	tc.c, err = bus.NewClient(nc, bus.WithTenant(user))
	require.NoError(t, err)
	return tc
}
