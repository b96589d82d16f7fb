package embedded

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestATakenAddressFailsAtOnce: a second worker on the same address used to
// wait the whole 30 s readiness timeout before failing.
func TestATakenAddressFailsAtOnce(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = StartContext(ctx, Options{Addr: ln.Addr().String(), StoreDir: t.TempDir()})
	require.ErrorIs(t, err, ErrAddrInUse)
	require.NoError(t, ctx.Err(), "it waited instead of failing")
}

func TestStartsAndStops(t *testing.T) {
	t.Parallel()
	s, err := StartContext(t.Context(), Options{Addr: "127.0.0.1:-1", StoreDir: t.TempDir()})
	require.NoError(t, err)
	require.NotEmpty(t, s.ClientURL())
	s.Shutdown()
	s.WaitForShutdown()
}
