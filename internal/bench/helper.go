package bench

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/internal/embedded"
)

// Helper runs one of the processes the comparison starts from its own
// executable, so that each has its own /proc entry:
//
//	nats -addr 127.0.0.1:PORT -store DIR       a JetStream server
//	baseline -nats URL -concurrency N -tokens T the raw baseline consumer
//
// It returns when ctx ends (the parent sends SIGTERM).
func Helper(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("bench helper: want a role (nats or baseline)")
	}
	fs := flag.NewFlagSet("bench helper "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch args[0] {
	case "nats":
		addr := fs.String("addr", "127.0.0.1:4222", "listen address")
		store := fs.String("store", "", "JetStream store directory")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		srv, err := embedded.Start(embedded.Options{Addr: *addr, StoreDir: *store})
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "nats ready", srv.ClientURL())
		<-ctx.Done()
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil
	case "baseline":
		url := fs.String("nats", "", "NATS URL")
		conc := fs.Int("concurrency", 256, "jobs in flight")
		tokens := fs.Int("tokens", 20, "chunks per job")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		nc, err := nats.Connect(*url, nats.Name("bench-baseline"))
		if err != nil {
			return err
		}
		defer nc.Close()
		fmt.Fprintln(stderr, "baseline consumer ready")
		return ServeBaseline(ctx, nc, *conc, *tokens)
	}
	return fmt.Errorf("bench helper: unknown role %q", args[0])
}
