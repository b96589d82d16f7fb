package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/apptest"
	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir.
type pki struct{ ca, srvCert, srvKey, cliCert, cliKey string }

func newPKI(t *testing.T, dir string) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) (string, string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		require.NoError(t, err)
		kb, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		return write(cn+".crt", "CERTIFICATE", der), write(cn+".key", "EC PRIVATE KEY", kb)
	}
	p := pki{ca: write("ca.crt", "CERTIFICATE", caDER)}
	p.srvCert, p.srvKey = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	p.cliCert, p.cliKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return p
}

// runApp runs a worker process in-process with env and returns once it is
// ready, or the error Run returned.
func runApp(t *testing.T, env config.Env) error {
	t.Helper()
	_, err := apptest.TryStart(t, env, app.Options{})
	return err
}

func baseEnv(t *testing.T) config.Env {
	t.Helper()
	t.Setenv("SWITCHYARD_METRICS_ADDR", "off")
	env, err := config.LoadEnv()
	require.NoError(t, err)
	env.DataDir = t.TempDir()
	return env
}

func TestWorkerWithTLSAndPassword(t *testing.T) {
	p := newPKI(t, t.TempDir())
	srv := natstest.Server(t, func(o *server.Options) {
		cert, err := tls.LoadX509KeyPair(p.srvCert, p.srvKey)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		caPEM, err := os.ReadFile(p.ca)
		require.NoError(t, err)
		pool.AppendCertsFromPEM(caPEM)
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
		o.TLSVerify = true
		o.TLS = true
		o.Username, o.Password = "worker", "s3cret-pw"
	})
	env := baseEnv(t)
	env.NATSURL = srv.ClientURL()
	env.NATSTLSCA, env.NATSTLSCert, env.NATSTLSKey = p.ca, p.cliCert, p.cliKey
	env.NATSUser = "worker"

	env.NATSPassword = "wrong"
	require.Error(t, runApp(t, env), "a wrong password must not connect")

	env.NATSPassword = "s3cret-pw"
	require.NoError(t, runApp(t, env))
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("worker", "s3cret-pw"),
		nats.RootCAs(p.ca), nats.ClientCert(p.cliCert, p.cliKey))
	require.NoError(t, err)
	defer nc.Close()
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.Submit(ctx, "demo", &bus.Request{Messages: []bus.Message{{Role: "user", Content: bus.Text("over TLS")}}})
	require.NoError(t, err)
	require.Equal(t, bus.StatusOK, res.Status)
}

func TestWorkerWithNKey(t *testing.T) {
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	seedFile := filepath.Join(t.TempDir(), "worker.nk")
	require.NoError(t, os.WriteFile(seedFile, seed, 0o600))
	srv := natstest.Server(t, func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	})
	env := baseEnv(t)
	env.NATSURL = srv.ClientURL()
	require.Error(t, runApp(t, env), "no credentials, no connection")
	env.NATSNKeySeed = seedFile
	require.NoError(t, runApp(t, env))
}

// TestATakenEmbeddedAddressIsNamed: a second worker whose embedded server's
// address is taken fails at once, naming the variable to change.
func TestATakenEmbeddedAddressIsNamed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	env := baseEnv(t)
	env.NATSURL = ""
	env.EmbeddedAddr = ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = app.Run(ctx, env, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Console: io.Discard})
	require.EqualError(t, err, "SWITCHYARD_EMBEDDED_ADDR="+env.EmbeddedAddr+" is in use, by another worker's embedded server perhaps: join it with NATS_URL=nats://"+env.EmbeddedAddr+", or set SWITCHYARD_EMBEDDED_ADDR to a free address")
	require.NoError(t, ctx.Err(), "it waited instead of failing")
}
