// Command multitenant runs Switchyard's two-tenant example in one process: a
// NATS server with the users and permissions of nats.conf (tenants acme and
// globex, a worker, an operator) and a worker that authenticates as the
// worker user and serves models.yaml. README.md says how to use it; the
// isolation tests of this directory run the same setup.
//
//	go run ./examples/multitenant
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/embedded"
)

// Development credentials of nats.conf (README.md lists them all).
const (
	workerUser     = "worker"
	workerPassword = "worker-dev"
)

// Setup places the example's server.
type Setup struct {
	// Dir holds nats.conf and models.yaml.
	Dir string
	// Addr is the server's host:port (port -1: any free port).
	Addr string
	// StoreDir is the JetStream store.
	StoreDir string
	Logger   *slog.Logger
}

// StartServer starts a NATS server with JetStream and the users and
// permissions of Dir/nats.conf.
func StartServer(s Setup) (*server.Server, error) {
	conf, err := server.ProcessConfigFile(filepath.Join(s.Dir, "nats.conf"))
	if err != nil {
		return nil, err
	}
	return embedded.Start(embedded.Options{
		Addr: s.Addr, StoreDir: s.StoreDir, Logger: s.Logger,
		Configure: func(o *server.Options) {
			o.Users = conf.Users
			o.MaxPayload = conf.MaxPayload
		},
	})
}

// WorkerEnv returns the worker's settings for the server at url: the worker
// user, the example's model file, and placeholders for the provider
// settings the model file names that the environment does not set (the demo
// group needs none of them).
func WorkerEnv(dir, url string) (config.Env, error) {
	for k, v := range map[string]string{
		"OPENAI_BASE_URL":   "https://api.openai.com/v1",
		"OPENAI_API_KEY":    "unset-fleet-key",
		"ACME_OPENAI_KEY":   "unset-acme-key",
		"GLOBEX_OPENAI_KEY": "unset-globex-key",
	} {
		if _, ok := os.LookupEnv(k); !ok {
			if err := os.Setenv(k, v); err != nil {
				return config.Env{}, err
			}
		}
	}
	env, err := config.LoadEnv()
	if err != nil {
		return env, err
	}
	env.NATSURL = url
	env.NATSUser, env.NATSPassword = workerUser, config.Secret(workerPassword)
	env.ConfigPath = filepath.Join(dir, "models.yaml")
	return env, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "multitenant:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	dir := "examples/multitenant"
	if _, err := os.Stat(filepath.Join(dir, "nats.conf")); errors.Is(err, os.ErrNotExist) {
		dir = "." // run from this directory
	}
	srv, err := StartServer(Setup{
		Dir: dir, Addr: cmp.Or(os.Getenv("MULTITENANT_ADDR"), "127.0.0.1:4222"),
		StoreDir: cmp.Or(os.Getenv("MULTITENANT_DATA"), "./data/multitenant"), Logger: log,
	})
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	env, err := WorkerEnv(dir, srv.ClientURL())
	if err != nil {
		return err
	}
	return app.Run(ctx, env, app.Options{
		Logger: log,
		OnReady: func(url, _ string) {
			fmt.Fprintf(os.Stderr, "\nThe two-tenant example is ready on %s. As tenant acme, try:\n\n"+
				"    NATS_URL=%s NATS_USER=acme NATS_PASSWORD=acme-dev SWITCHYARD_TENANT=acme go run ./cmd/submit \"hello\"\n\n"+
				"README.md in examples/multitenant lists the users and what each may do.\n\n", url, url)
		},
	})
}
