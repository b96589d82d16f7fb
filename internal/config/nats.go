package config

import (
	"fmt"
	"net"
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
		unacked := natsUnackedTimeout(e.NATSPingInterval, e.NATSMaxPingsOut)
		opts = append(opts,
			nats.PingInterval(e.NATSPingInterval),
			nats.MaxPingsOutstanding(e.NATSMaxPingsOut),
			// A write to a silent server blocks once the socket's buffer
			// is full, holding the connection's lock, and the ping timer
			// waits for that lock: each blocked write (the flusher's, a
			// ping's, a large publish's) holds it up to the write timeout,
			// and a write that timed out before sending a byte drops what
			// was buffered and keeps the connection. Seen in the partition
			// scenario: a busy worker kept a cut node for over 34 s with
			// pings of 2 s x 3. So the kernel ends such a connection
			// itself (TCP_USER_TIMEOUT, on Linux): data unacknowledged for
			// the pings' own bound fails every blocked write and the read
			// at once, and the client reconnects whatever holds its lock.
			nats.SetCustomDialer(&net.Dialer{Timeout: nats.DefaultTimeout, Control: unackedControl(unacked)}),
			// Elsewhere, and as a second line: the write timeout
			// (nats.go's 1 min by default) is the same bound, and a write
			// that timed out reconnects instead of dropping the buffer.
			nats.FlusherTimeout(unacked),
			nats.ReconnectOnFlusherError(),
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

// natsUnackedTimeout is how long sent data may stay unacknowledged before
// the connection is given up: as long as the pings' own bound, MaxPingsOut+1
// intervals.
func natsUnackedTimeout(pingInterval time.Duration, maxPingsOut int) time.Duration {
	return pingInterval * time.Duration(maxPingsOut+1)
}

// NATSSilentBound is how long after its server falls silent (a partition,
// a frozen host: no RST, the packets vanish) a client connected with
// NATSOptions and these ping settings is connected to another server of
// NATS_URL, on Linux, however busy it is:
//   - the first data left unacknowledged is sent at once by a busy client
//     and by an idle one with its next ping, at most one interval later;
//   - the kernel ends the connection once that data is unacknowledged for
//     natsUnackedTimeout (an idle client's pings find the silence as soon);
//   - the client then dials the next server of its pool (the silent one
//     goes last), with nats.DefaultTimeout for the dial and handshake.
func NATSSilentBound(pingInterval time.Duration, maxPingsOut int) time.Duration {
	return pingInterval + natsUnackedTimeout(pingInterval, maxPingsOut) + nats.DefaultTimeout
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
