package console

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestQuantileInterpolatesWithinTheBucket(t *testing.T) {
	t.Parallel()
	// 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.5], 10 in (0.5, 1].
	h := &histDelta{bounds: []float64{0.1, 0.5, 1, math.Inf(1)}, counts: []float64{50, 90, 100, 100}, total: 100}
	require.InDelta(t, 0.1, quantile(0.5, h), 1e-9)
	require.InDelta(t, 0.3, quantile(0.7, h), 1e-9)
	require.InDelta(t, 0.95, quantile(0.99, h), 1e-9)
	// Past the last finite bound: that bound.
	h = &histDelta{bounds: []float64{0.1, math.Inf(1)}, counts: []float64{1, 10}, total: 10}
	require.InDelta(t, 0.1, quantile(0.99, h), 1e-9)
}

func TestSafeNextStaysInTheConsole(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/console/jobs?id=x": "/console/jobs?id=x",
		"https://evil.test/": "/console/",
		"//evil.test/":       "/console/",
		"/console/\\evil":    "/console/",
		"/admin/keys":        "/console/",
		"":                   "/console/",
	} {
		require.Equal(t, want, safeNext(in), in)
	}
}

func TestLoopbackNeedsALoopbackPeerAndHost(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		remote, host string
		ok           bool
	}{
		{"127.0.0.1:5000", "127.0.0.1:8080", true},
		{"[::1]:5000", "[::1]:8080", true},
		{"127.0.0.1:5000", "localhost:8080", true},
		{"127.0.0.1:5000", "evil.test:8080", false}, // DNS rebinding
		{"10.0.0.7:5000", "127.0.0.1:8080", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/console/", nil)
		r.RemoteAddr, r.Host = c.remote, c.host
		require.Equal(t, c.ok, loopback(r), "%s %s", c.remote, c.host)
	}
}

type secretOnly struct{ Backend }

func (secretOnly) SessionSecret(context.Context) ([]byte, error) {
	return []byte("0123456789abcdef"), nil
}

func TestSessionsAreSignedAndExpire(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	c := &Console{be: secretOnly{}, cfg: Config{SessionTTL: time.Hour, Now: func() time.Time { return now }}}
	ctx := context.Background()
	v, err := c.newSession(ctx, "sha256:abc")
	require.NoError(t, err)
	read := func(value string) (string, bool) {
		r := httptest.NewRequest(http.MethodGet, "/console/", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: value})
		h, ok, err := c.session(ctx, r)
		require.NoError(t, err)
		return h, ok
	}
	h, ok := read(v)
	require.True(t, ok)
	require.Equal(t, "sha256:abc", h)
	// Another hash under the same signature is refused.
	p64, sig, _ := strings.Cut(v, ".")
	forged := strings.Replace(p64, p64[:4], "AAAA", 1) + "." + sig
	_, ok = read(forged)
	require.False(t, ok)
	now = now.Add(time.Hour + time.Second)
	_, ok = read(v)
	require.False(t, ok, "expired")
}

func TestTemplatesParseAndStaticIsEmbedded(t *testing.T) {
	t.Parallel()
	tm, err := parseTemplates()
	require.NoError(t, err)
	for _, p := range []string{"overview", "jobs", "job", "dlq", "deadletter", "confirm-dlq", "confirm", "batches", "tenants", "key-created", "login", "error"} {
		require.Contains(t, tm, p)
	}
	for _, f := range []string{"static/console.css", "static/console.js"} {
		fh, err := staticFS.Open(f)
		require.NoError(t, err)
		b, _ := io.ReadAll(fh)
		require.NotEmpty(t, b)
		require.NotContains(t, string(b), "http://", "nothing is fetched from elsewhere")
		require.NotContains(t, string(b), "https://")
		_ = fh.Close()
	}
}
