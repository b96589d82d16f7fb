package gateway

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/pkg/bus"
)

// Identity is who a request authenticated as.
type Identity struct {
	// Tenant is the tenant whose namespace the request's jobs run in; ""
	// is the anonymous tenant.
	Tenant string
	// Admin keys may use the operator endpoints.
	Admin bool
}

// identity is a request's authenticated identity and its tenant's client.
type identity struct {
	Identity
	client *bus.Client
}

type identityKey struct{}

func identityOf(ctx context.Context) *identity {
	id, _ := ctx.Value(identityKey{}).(*identity)
	return id
}

// presentedKey returns the API key of a request: OpenAI's Authorization
// Bearer or Anthropic's x-api-key.
func presentedKey(r *http.Request) string {
	if k := r.Header.Get("x-api-key"); k != "" {
		return k
	}
	if a := r.Header.Get("Authorization"); a != "" {
		if k, ok := strings.CutPrefix(a, "Bearer "); ok {
			return strings.TrimSpace(k)
		}
	}
	return ""
}

// authenticate resolves the request's identity: the anonymous tenant when
// no keys are configured, else the presented key's tenant; an unknown key
// is a 401 in the route's vendor shape.
func (g *Gateway) authenticate(werr errorWriter, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var who Identity
		{
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			required, err := g.keys.Required(wctx)
			cancel()
			required = required || g.cfg.RequireKeys
			if err != nil {
				werr(w, busError(err))
				return
			}
			key := presentedKey(r)
			switch {
			case !required:
				// No key exists: the anonymous tenant, whatever was sent
				// (SDKs insist on sending some key).
			case key != "":
				id, ok, err := g.keys.Lookup(ctx, key)
				if err != nil {
					werr(w, busError(err))
					return
				}
				if !ok {
					werr(w, unauthorized("Incorrect API key provided: %s.", redact(key)))
					return
				}
				who = id
			case required:
				werr(w, unauthorized("You didn't provide an API key. Provide it as Authorization: Bearer <key> or x-api-key: <key>."))
				return
			}
		}
		c, err := g.client(who.Tenant)
		if err != nil {
			werr(w, busError(err))
			return
		}
		h(w, r.WithContext(context.WithValue(ctx, identityKey{}, &identity{Identity: who, client: c})))
	}
}

func unauthorized(format string, args ...any) *apiError {
	e := newError(bus.CodeAuth, format, args...)
	e.status, e.code = http.StatusUnauthorized, "invalid_api_key"
	e.openAIType, e.anthropicType = "invalid_request_error", "authentication_error"
	return e
}

// redact shows enough of a key to recognise it, as OpenAI does.
func redact(key string) string {
	if len(key) <= 8 {
		return "***"
	}
	return key[:3] + "***" + key[len(key)-4:]
}

// newTenantClient returns the bus client that publishes in a tenant's
// namespace.
func newTenantClient(nc *nats.Conn, subj bus.Subjects, tenant string) (*bus.Client, error) {
	return bus.NewClient(nc, bus.WithSubjects(subj), bus.WithTenant(tenant))
}
