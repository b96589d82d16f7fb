package config

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// NATSOptions returns the connection options for the environment's
// credentials and TLS settings, plus reconnect settings suited to a
// long-running process.
func (e Env) NATSOptions(name string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(64 << 20),
	}
	if e.NATSUser != "" {
		opts = append(opts, nats.UserInfo(e.NATSUser, e.NATSPassword.Reveal()))
	}
	if e.NATSToken != "" {
		opts = append(opts, nats.Token(e.NATSToken.Reveal()))
	}
	if e.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(e.NATSCreds))
	}
	if e.NATSNKeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(e.NATSNKeySeed)
		if err != nil {
			return nil, fmt.Errorf("config: NATS_NKEY_SEED: %w", err)
		}
		opts = append(opts, o)
	}
	if e.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(e.NATSTLSCA))
	}
	if e.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(e.NATSTLSCert, e.NATSTLSKey))
	}
	return opts, nil
}
