package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

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
	// Zero values (an Env not read by LoadEnv) keep nats.go's defaults.
	if e.NATSPingInterval > 0 && e.NATSMaxPingsOut > 0 {
		bound := e.NATSPingInterval * time.Duration(e.NATSMaxPingsOut+1)
		opts = append(opts,
			nats.PingInterval(e.NATSPingInterval),
			nats.MaxPingsOutstanding(e.NATSMaxPingsOut),
			// The ping timer cannot fire while a write to the silent server
			// blocks (a busy worker fills the socket's buffer in moments,
			// and nats.go holds the connection's lock while it flushes); the
			// write timeout, nats.go's 1 min by default, is the same bound.
			nats.FlusherTimeout(bound),
		)
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

// RedactURL returns a NATS_URL (a comma-separated list of server URLs) fit
// for a log line or an error: the password of every URL, or its user when
// it has no password (a token: nats://<token>@host), is "[redacted]".
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactOne(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactOne(p string) string {
	u, err := url.Parse(p)
	if err != nil {
		// Unparseable, yet it may hold credentials: keep only what
		// follows the last "@".
		if i := strings.LastIndex(p, "@"); i >= 0 {
			return "[redacted]@" + p[i+1:]
		}
		return p
	}
	if u.User == nil {
		return p
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "redacted")
		return strings.Replace(u.String(), ":redacted@", ":[redacted]@", 1)
	}
	u.User = url.User("redacted")
	return strings.Replace(u.String(), "redacted@", "[redacted]@", 1)
}

// urlPasswords returns the passwords (and tokens) in a NATS_URL.
func urlPasswords(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if pw, has := u.User.Password(); has {
			out = append(out, pw)
		} else if t := u.User.Username(); t != "" {
			out = append(out, t)
		}
	}
	return out
}
