// Package console is the operator's web console, served by the gateway under
// /console: queues and deployments (overview), jobs, dead letters with
// replay, batches, tenants' spend and API keys.
//
// Pages are rendered on the server (html/template) and work without
// JavaScript; a little plain JavaScript (static/console.js) follows live
// updates over SSE. Every asset is embedded: nothing is fetched from
// elsewhere. Every action that changes state goes through a confirmation
// page (a form, not a script dialog), is refused from another origin, and is
// logged with who did it.
//
// What the console reads comes from the fleet itself: the streams
// (internal/ops), the workers' heartbeats (internal/heartbeat), the budgets
// (internal/tenant); what only the gateway knows (keys, batches, files)
// comes through Backend. It must not import the gateway (the gateway
// imports it) nor the worker.
package console

import (
	"cmp"
	"context"
	"embed"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/ops"
	"github.com/switchyard/switchyard/internal/tenant"
	"github.com/switchyard/switchyard/pkg/bus"
)

// Identity is who a console request is.
type Identity struct {
	// Tenant is the key's tenant ("" the anonymous tenant).
	Tenant string
	// Admin sees and does everything; anyone else sees only Tenant's data,
	// read-only.
	Admin bool
	// KeyID and KeyName name the key (empty for Local).
	KeyID, KeyName string
	// Local is the keyless console of a gateway without keys, served to
	// loopback clients only.
	Local bool
}

// Who names the identity in logs and replay marks.
func (i Identity) Who() string {
	if i.Local {
		return "local (no API keys configured)"
	}
	s := "key " + i.KeyID
	if i.KeyName != "" {
		s += " (" + i.KeyName + ")"
	}
	return s
}

// Key is an API key as the console lists it (never the key itself).
type Key struct {
	ID, Tenant, Name, Hint string
	Admin                  bool
	CreatedAt              time.Time
	// Static keys come from the model file and cannot be revoked here.
	Static bool
}

// Batch is a Batch API batch.
type Batch struct {
	ID, Tenant, Status, Endpoint string
	Total, Completed, Failed     int
	CreatedAt                    time.Time
	InProgressAt, EndedAt        time.Time
	OutputFileID, ErrorFileID    string
}

// Active reports whether the batch still runs.
func (b *Batch) Active() bool {
	switch b.Status {
	case "validating", "in_progress", "finalizing", "cancelling":
		return true
	}
	return false
}

// Backend is what only the gateway knows. *gateway.Gateway provides it.
type Backend interface {
	// KeysRequired reports whether a key is needed (false only while no
	// key exists and none is required).
	KeysRequired(ctx context.Context) (bool, error)
	// Authenticate resolves a presented key, AuthenticateHash a key's
	// hash (a session); false when unknown or revoked.
	Authenticate(ctx context.Context, key string) (Identity, string, bool, error)
	AuthenticateHash(ctx context.Context, hash string) (Identity, bool, error)
	Keys(ctx context.Context) ([]Key, error)
	CreateKey(ctx context.Context, tenant, name string, admin bool) (string, Key, error)
	RevokeKey(ctx context.Context, id string) (Key, error)
	// Batches lists batches, of one tenant or (nil) of all.
	Batches(ctx context.Context, tenant *string) ([]Batch, error)
	CancelBatch(ctx context.Context, tenant, id string) (*Batch, error)
	// OpenFile opens a tenant's file (a batch's output or errors).
	OpenFile(ctx context.Context, tenant, id string) (io.ReadCloser, string, error)
	// SessionSecret is the key that signs console sessions, the same on
	// every gateway.
	SessionSecret(ctx context.Context) ([]byte, error)
}

// Config configures a Console. Backend and JetStream are required; every
// other field has a default, stated on the field.
type Config struct {
	Backend   Backend
	JetStream jetstream.JetStream
	// Subjects names the fleet's subjects (default prefix "llm").
	Subjects bus.Subjects
	// Budgets are the tenants' budgets from the model file, to show spend
	// against them.
	Budgets map[string]tenant.Limit
	// SampleInterval is how often the overview samples the queues and the
	// workers' heartbeats (default 3s); Window how much history it keeps
	// for rates and sparklines (default 15m).
	SampleInterval, Window time.Duration
	// SessionTTL is how long a login lasts (default 12h).
	SessionTTL time.Duration
	// Logger receives the audit log of actions (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.SampleInterval = cmp.Or(c.SampleInterval, 3*time.Second)
	c.Window = cmp.Or(c.Window, 15*time.Minute)
	c.SessionTTL = cmp.Or(c.SessionTTL, 12*time.Hour)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the console. Create it with New; mount Handler under
// /console/ and run Run.
type Console struct {
	cfg     Config
	be      Backend
	js      jetstream.JetStream
	subj    bus.Subjects
	log     *slog.Logger
	jobs    *ops.Jobs
	dlq     *ops.DeadLetters
	tmpl    map[string]*template.Template
	sampler *sampler
	mux     *http.ServeMux
}

// New returns a console.
func New(cfg Config) (*Console, error) {
	cfg = cfg.withDefaults()
	c := &Console{cfg: cfg, be: cfg.Backend, js: cfg.JetStream, subj: cfg.Subjects.ForTenant(""), log: cfg.Logger}
	c.jobs = ops.NewJobs(c.js, c.subj)
	c.dlq = ops.NewDeadLetters(c.js, c.subj)
	var err error
	if c.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	c.sampler = newSampler(c.js, c.subj, cfg.SampleInterval, cfg.Window, cfg.Now, cfg.Logger)
	c.routes()
	return c, nil
}

// Handler serves the console; it expects paths that start with /console/.
func (c *Console) Handler() http.Handler { return c.mux }

// Run samples the overview until ctx ends.
func (c *Console) Run(ctx context.Context) error { return c.sampler.run(ctx) }

func (c *Console) routes() {
	m := http.NewServeMux()
	c.mux = m
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", cacheable(http.FileServerFS(static))))
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.login)
	m.HandleFunc("POST /console/logout", c.logout)

	page := func(pattern string, h func(http.ResponseWriter, *http.Request, *Identity)) {
		m.Handle(pattern, c.authenticated(h, false))
	}
	admin := func(pattern string, h func(http.ResponseWriter, *http.Request, *Identity)) {
		m.Handle(pattern, c.authenticated(h, true))
	}
	page("GET /console/{$}", c.overviewPage)
	page("GET /console/live/overview", c.overviewLive)
	page("GET /console/jobs", c.jobsPage)
	page("GET /console/jobs/{tenant}/{id}", c.jobPage)
	page("GET /console/jobs/{tenant}/{id}/events", c.jobEvents)
	page("GET /console/dlq", c.dlqPage)
	page("GET /console/dlq/{seq}", c.deadLetterPage)
	admin("GET /console/dlq/confirm", c.dlqConfirm)
	admin("POST /console/dlq/replay", c.dlqAct)
	admin("POST /console/dlq/purge", c.dlqAct)
	page("GET /console/batches", c.batchesPage)
	page("GET /console/files/{tenant}/{id}", c.download)
	admin("GET /console/batches/{tenant}/{id}/cancel", c.batchCancelConfirm)
	admin("POST /console/batches/{tenant}/{id}/cancel", c.batchCancel)
	page("GET /console/tenants", c.tenantsPage)
	admin("GET /console/keys/confirm", c.keyConfirm)
	admin("POST /console/keys", c.keyCreate)
	admin("POST /console/keys/{id}/revoke", c.keyRevoke)
}

func cacheable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// audit logs an action that changed state, with who did it.
func (c *Console) audit(r *http.Request, id *Identity, action string, attrs ...any) {
	c.log.InfoContext(r.Context(), "console action", append([]any{slog.String("action", action), slog.String("by", id.Who()),
		slog.String("tenant_of_key", id.Tenant), slog.String("remote", r.RemoteAddr)}, attrs...)...)
}
