// Package gatewayrun wires an HTTP gateway from the environment and the model
// file: cmd/gateway (a gateway process of its own) and the worker's
// in-process gateway (SWITCHYARD_HTTP_ADDR, `make run`) share it.
//
// It is wiring: it may import internal/config and internal/gateway, and
// nothing but commands and internal/app may import it.
package gatewayrun

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/gateway"
	"github.com/switchyard/switchyard/pkg/bus"
)

// Config returns the gateway's configuration: its model names from the
// model file's groups and aliases, its keys from api_keys.
func Config(env config.Env, m *config.Models, log *slog.Logger) (gateway.Config, error) {
	var names []gateway.Model
	for _, n := range m.ModelNames() {
		names = append(names, gateway.Model{Name: n.Name, Group: n.Group, Hidden: n.Hidden})
	}
	cat, err := gateway.NewCatalog(names)
	if err != nil {
		return gateway.Config{}, err
	}
	var keys []gateway.KeyRecord
	for _, k := range m.APIKeys {
		keys = append(keys, gateway.KeyRecord{Hash: k.KeyHash(), Tenant: k.Tenant, Admin: k.Admin, Name: k.Name})
	}
	return gateway.Config{
		Catalog:             cat,
		Subjects:            bus.Subjects{Prefix: env.Prefix},
		APIKeys:             keys,
		RequireKeys:         env.RequireAPIKeys,
		Logger:              log,
		MaxBodyBytes:        int64(env.HTTPMaxBody),
		WriteTimeout:        env.HTTPWriteTimeout,
		ShutdownGrace:       env.ShutdownGrace,
		Replicas:            env.Replicas,
		WebhookAllowPrivate: env.WebhookAllowPrivate,
		Budgets:             m.BudgetLimits(),
	}, nil
}

// Listener opens the gateway's address.
func Listener(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("SWITCHYARD_HTTP_ADDR %s: %w", addr, err)
	}
	return ln, nil
}

// Serve runs a gateway on nc and ln until ctx ends (then it finishes running
// requests within the shutdown grace).
func Serve(ctx context.Context, env config.Env, m *config.Models, nc *nats.Conn, ln net.Listener, log *slog.Logger) error {
	cfg, err := Config(env, m, log)
	if err != nil {
		return err
	}
	gw, err := gateway.New(nc, cfg)
	if err != nil {
		return err
	}
	return gw.Serve(ctx, ln)
}
