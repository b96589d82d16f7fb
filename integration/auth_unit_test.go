package integration

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// TestChaosAuthIsolatesTheTenants loads chaosAuth (the shipped permissions
// with globex added) into an in-process nats-server: it parses, each
// tenant's user reaches its own reply namespace, and the other tenant's is
// refused, both ways. It needs no Docker, so a permissions.conf that no
// longer yields two working tenants fails here before the chaos run.
func TestChaosAuthIsolatesTheTenants(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nats.conf")
	require.NoError(t, os.WriteFile(path, []byte("port: -1\nhost: 127.0.0.1\n"+chaosAuth(t)), 0o600))
	opts, err := server.ProcessConfigFile(path)
	require.NoError(t, err, "chaosAuth does not parse")
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(srv.Shutdown)
	require.True(t, srv.ReadyForConnections(10*time.Second))

	conn := func(tenant string, denied chan<- error) *nats.Conn {
		nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("switchyard-"+tenant, tenant+"-chaos"), nats.CustomInboxPrefix("_INBOX."+tenant),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				if errors.Is(err, nats.ErrPermissionViolation) {
					select {
					case denied <- err:
					default:
					}
				}
			}))
		require.NoError(t, err, "connect as %s", tenant)
		t.Cleanup(nc.Close)
		return nc
	}
	for _, pair := range [][2]string{{"acme", "globex"}, {"globex", "acme"}} {
		me, other := pair[0], pair[1]
		denied := make(chan error, 1)
		nc := conn(me, denied)
		// Its own namespace: subscribed without a violation.
		_, err := nc.SubscribeSync("llm.t." + me + ".res.>")
		require.NoError(t, err)
		require.NoError(t, nc.Flush())
		select {
		case err := <-denied:
			t.Fatalf("%s refused its own namespace: %v", me, err)
		case <-time.After(300 * time.Millisecond):
		}
		// The other's: refused by the server.
		_, err = nc.SubscribeSync("llm.t." + other + ".res.>")
		require.NoError(t, err)
		select {
		case err := <-denied:
			require.ErrorIs(t, err, nats.ErrPermissionViolation)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s subscribed to %s's results unrefused", me, other)
		}
	}
	// The worker and the operator log in too.
	for _, u := range []string{"worker", "operator"} {
		nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("switchyard-"+u, u+"-chaos"))
		require.NoError(t, err, "connect as %s", u)
		nc.Close()
	}
}
