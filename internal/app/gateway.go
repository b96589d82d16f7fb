package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/gatewayrun"
)

// gatewayStep is the HTTP gateway served in the worker's process when
// SWITCHYARD_HTTP_ADDR is set (`make run`). It is a producer like any
// other, on a NATS connection of its own: nothing in it reaches into the
// worker.
type gatewayStep struct {
	addr string
	nc   *nats.Conn
	ln   net.Listener
}

// openGateway connects and listens at once (so a taken port fails the
// start); serve then runs it.
func openGateway(env config.Env, url string) (*gatewayStep, error) {
	opts, err := env.NATSOptions("switchyard-gateway")
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(-1))...)
	if err != nil {
		return nil, fmt.Errorf("gateway: connect to NATS at %s: %w", url, err)
	}
	ln, err := gatewayrun.Listener(env.HTTPAddr)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &gatewayStep{addr: ln.Addr().String(), nc: nc, ln: ln}, nil
}

// serve runs the gateway until ctx ends and its requests are finished.
func (s *gatewayStep) serve(ctx context.Context, env config.Env, models *config.Models, log *slog.Logger) error {
	return gatewayrun.Serve(ctx, env, models, s.nc, s.ln, log.With(slog.String("component", "gateway")))
}

func (s *gatewayStep) close() error {
	_ = s.ln.Close() // in case it never served
	s.nc.Close()
	return nil
}

// gatewayBanner is what `make run` prints once the gateway is up.
func gatewayBanner(w io.Writer, addr string) {
	fmt.Fprintf(w, `The OpenAI- and Anthropic-compatible HTTP API is on http://%[1]s (docs/http.md):

    curl -sN http://%[1]s/v1/chat/completions -H 'Content-Type: application/json' \
      -d '{"model":"demo","stream":true,"messages":[{"role":"user","content":"Tell me about switchyards"}]}'

    # any OpenAI SDK: point its base URL here (no key needed until one is created)
    from openai import OpenAI
    client = OpenAI(base_url="http://%[1]s/v1", api_key="unused")
    print(client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Hi"}]).choices[0].message.content)

The operator's console (queues, jobs, dead letters, batches, keys) is on http://%[1]s/console/ (docs/console.md).

`, addr)
}
