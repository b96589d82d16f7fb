package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/switchyard/switchyard/internal/spell"
)

// Env is the worker's process configuration, read from the environment.
// Defaults are in the envDefault tags.
type Env struct {
	// NATSURL is a comma-separated list of server URLs. Empty: the worker
	// starts an embedded server (see EmbeddedAddr, DataDir).
	NATSURL      string `env:"NATS_URL" help:"comma-separated server URLs; empty: run an embedded server"`
	NATSUser     string `env:"NATS_USER" help:"user name (with NATS_PASSWORD)"`
	NATSPassword Secret `env:"NATS_PASSWORD" help:"password (with NATS_USER)"`
	NATSToken    Secret `env:"NATS_TOKEN" help:"authentication token"`
	// NATSCreds is a credentials file (JWT + NKey seed).
	NATSCreds string `env:"NATS_CREDS" help:"credentials file (JWT and NKey seed)"`
	// NATSNKeySeed is a file holding an NKey seed.
	NATSNKeySeed string `env:"NATS_NKEY_SEED" help:"file holding an NKey seed"`
	NATSTLSCA    string `env:"NATS_TLS_CA" help:"CA certificate file to verify the server"`
	NATSTLSCert  string `env:"NATS_TLS_CERT" help:"client certificate file (with NATS_TLS_KEY)"`
	NATSTLSKey   string `env:"NATS_TLS_KEY" help:"client key file (with NATS_TLS_CERT)"`
	// NATSPingInterval and NATSMaxPingsOut bound how long a connection to a
	// server that went silent (a partitioned or frozen node: no RST, the
	// packets just vanish) is kept: after MaxPingsOut+1 unanswered pings it
	// is dropped and the client moves to another server of NATS_URL. nats.go's
	// own defaults (2 min, 2) keep a worker on a cut node for 4 to 6 minutes.
	NATSPingInterval time.Duration `env:"NATS_PING_INTERVAL" envDefault:"5s" help:"how often the client pings its server"`
	NATSMaxPingsOut  int           `env:"NATS_MAX_PINGS_OUT" envDefault:"3" help:"unanswered pings before the client drops a silent server and reconnects"`

	// EmbeddedAddr is where the embedded server listens.
	EmbeddedAddr string `env:"SWITCHYARD_EMBEDDED_ADDR" envDefault:"127.0.0.1:4222" help:"host:port of the embedded server"`
	// DataDir holds the embedded server's JetStream files.
	DataDir string `env:"SWITCHYARD_DATA_DIR" envDefault:"./data" help:"the embedded server's JetStream store"`
	// SyncAlways fsyncs every JetStream write of the embedded server.
	SyncAlways bool `env:"SWITCHYARD_SYNC_ALWAYS" help:"the embedded server fsyncs every write"`

	// ConfigPath is the YAML model file. Empty: a built-in "demo" group on
	// the mock provider.
	ConfigPath string `env:"SWITCHYARD_CONFIG" help:"model file (YAML); empty: the built-in demo group"`
	// Groups served by this worker (comma-separated). Empty: every group of
	// the model file.
	Groups []string `env:"SWITCHYARD_GROUPS" envSeparator:"," help:"comma-separated groups this worker serves; empty: all in the model file"`
	// Concurrency is the number of jobs run at once per group.
	Concurrency int `env:"SWITCHYARD_CONCURRENCY" envDefault:"128" help:"jobs at once per group on this worker, shared by its tenants and classes"`
	// InteractiveShare is the share of each group's slots kept for
	// interactive jobs (see docs/scheduling.md).
	InteractiveShare float64 `env:"SWITCHYARD_INTERACTIVE_SHARE" envDefault:"0.25" help:"share of each group's slots kept for interactive jobs, 0 to below 1"`
	// Prefix of every subject.
	Prefix string `env:"SWITCHYARD_PREFIX" envDefault:"llm" help:"subject prefix"`
	// Replicas of the streams and buckets this worker creates (3 on a cluster).
	Replicas int `env:"SWITCHYARD_REPLICAS" envDefault:"1" help:"replicas of the streams and buckets it creates (3 on a cluster)"`
	// AckWait of the group consumers.
	AckWait time.Duration `env:"SWITCHYARD_ACK_WAIT" envDefault:"30s" help:"redelivery timeout of a silent worker"`
	// MaxDeliver bounds deliveries of one job.
	MaxDeliver int `env:"SWITCHYARD_MAX_DELIVER" envDefault:"5" help:"deliveries of a job before it goes to the DLQ"`
	// ShutdownGrace is how long running jobs may finish after SIGTERM.
	ShutdownGrace time.Duration `env:"SWITCHYARD_SHUTDOWN_GRACE" envDefault:"25s" help:"time running jobs get after SIGTERM before they are handed back"`
	// MaxJobTime bounds one job.
	MaxJobTime time.Duration `env:"SWITCHYARD_MAX_JOB_TIME" envDefault:"10m" help:"upper bound of one job"`
	// DurableEvents stores events in LLM_RESULTS so streams can be replayed.
	DurableEvents bool `env:"SWITCHYARD_DURABLE_EVENTS" help:"also store events, so streams can be replayed (submit watch)"`
	// EventsMaxAge is how long stored events are kept (with DurableEvents).
	EventsMaxAge time.Duration `env:"SWITCHYARD_EVENTS_MAX_AGE" envDefault:"1h" help:"how long stored events are kept"`
	// ResultsMaxAge is how long results are kept.
	ResultsMaxAge time.Duration `env:"SWITCHYARD_RESULTS_MAX_AGE" envDefault:"24h" help:"how long results are kept"`
	// FleetState shares breaker state and rate counters through NATS KV.
	FleetState bool `env:"SWITCHYARD_FLEET_STATE" envDefault:"true" help:"share breaker state and rpm/tpm counters through NATS KV"`
	// ValidationRetries is the default number of re-asks of a structured
	// output that does not validate.
	ValidationRetries int `env:"SWITCHYARD_VALIDATION_RETRIES" envDefault:"2" help:"default re-asks of structured output that does not validate"`

	// HTTPAddr is where the HTTP gateway (OpenAI and Anthropic APIs, jobs,
	// batches) listens. The worker serves it in its own process when set;
	// cmd/gateway defaults it to 127.0.0.1:8080.
	HTTPAddr string `env:"SWITCHYARD_HTTP_ADDR" help:"serve the HTTP gateway (OpenAI/Anthropic API) here; empty: no gateway in the worker"`
	// HTTPMaxBody bounds a request body of the gateway, in bytes.
	HTTPMaxBody int `env:"SWITCHYARD_HTTP_MAX_BODY" envDefault:"33554432" help:"largest HTTP request body, bytes (batch files: 200 MB)"`
	// HTTPWriteTimeout bounds each write of a response, so that a client
	// that stops reading is dropped.
	HTTPWriteTimeout time.Duration `env:"SWITCHYARD_HTTP_WRITE_TIMEOUT" envDefault:"30s" help:"a client that reads nothing for this long is dropped"`
	// RequireAPIKeys makes the gateway refuse requests without a key even
	// while no key exists.
	RequireAPIKeys bool `env:"SWITCHYARD_REQUIRE_API_KEYS" help:"the gateway needs an API key even while none exists (else: none needed until the first)"`
	// WebhookAllowPrivate lets webhooks call loopback and private
	// addresses.
	WebhookAllowPrivate bool `env:"SWITCHYARD_WEBHOOK_ALLOW_PRIVATE" help:"webhooks may call loopback and private addresses"`

	// MetricsAddr serves /metrics, /healthz and /readyz; "off" turns them off.
	MetricsAddr string `env:"SWITCHYARD_METRICS_ADDR" envDefault:"127.0.0.1:9464" help:"/metrics, /healthz and /readyz; off turns them off"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	// LogFormat is auto (tint on a terminal, JSON otherwise), text or json.
	LogFormat string `env:"LOG_FORMAT" envDefault:"auto" help:"auto (text on a terminal, JSON otherwise), text or json"`
}

// LoadEnv reads and checks the environment.
func LoadEnv() (Env, error) { return loadEnv(environ()) }

func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func loadEnv(environ map[string]string) (Env, error) {
	e, err := env.ParseAsWithOptions[Env](env.Options{Environment: environ})
	if err != nil {
		return e, errors.Join(namedEnvError(err, environ), misspeltVariables(environ))
	}
	return e, errors.Join(misspeltVariables(environ), e.validate())
}

// Variable is one environment variable of the worker, for help and docs.
type Variable struct {
	Name, Default, Help string
	// Type is what the value must look like: string, bool, int, duration or list.
	Type string
}

// Variables lists the worker's environment variables in declaration order.
func Variables() []Variable {
	var out []Variable
	t := reflect.TypeFor[Env]()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("env")
		if name == "" {
			continue
		}
		out = append(out, Variable{Name: name, Default: f.Tag.Get("envDefault"), Help: f.Tag.Get("help"), Type: typeName(f.Type)})
	}
	return out
}

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.Int:
		return "int"
	case t.Kind() == reflect.Float64:
		return "number"
	}
	return "string"
}

// otherVariables are SWITCHYARD_ variables that other commands read (so a
// worker sharing their environment does not take them for misspellings).
var otherVariables = []string{"SWITCHYARD_TENANT"}

// misspeltVariables refuses a SWITCHYARD_ variable that is no variable of
// the worker's but close to one, naming the one that was probably meant. A
// variable far from every known one is left alone: other tools may read it.
func misspeltVariables(environ map[string]string) error {
	var known []string
	for _, v := range Variables() {
		known = append(known, v.Name)
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(environ)) {
		if !strings.HasPrefix(k, "SWITCHYARD_") || slices.Contains(known, k) || slices.Contains(otherVariables, k) {
			continue
		}
		if s, ok := spell.Closest(k, known); ok {
			errs = append(errs, fmt.Errorf("config: %s is not a Switchyard variable; did you mean %s?", k, s))
		}
	}
	return errors.Join(errs...)
}

// namedEnvError rewrites env's parse errors, which name struct fields and Go
// types, to name the environment variable and say what its value should
// look like.
func namedEnvError(err error, environ map[string]string) error {
	agg, ok := errors.AsType[env.AggregateError](err)
	if !ok {
		return fmt.Errorf("config: %w", err)
	}
	var errs []error
	t := reflect.TypeFor[Env]()
	for _, e := range agg.Errors {
		if pe, ok := errors.AsType[env.ParseError](e); ok {
			if f, ok := t.FieldByName(pe.Name); ok {
				name := f.Tag.Get("env")
				errs = append(errs, fmt.Errorf("config: %s=%s: %s", name, environ[name], valueHint(typeName(f.Type), environ[name])))
				continue
			}
		}
		errs = append(errs, fmt.Errorf("config: %w", e))
	}
	return errors.Join(errs...)
}

// valueHint says what a value of a type should look like.
func valueHint(typ, value string) string {
	switch typ {
	case "duration":
		if _, err := strconv.ParseFloat(value, 64); err == nil {
			return fmt.Sprintf("needs a unit, for example %ss", value)
		}
		return "want a duration such as 30s, 5m or 1h30m"
	case "int":
		return "want a whole number"
	case "float":
		return "want a number"
	case "bool":
		return "want true or false"
	}
	return "not a valid value"
}

func (e Env) validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: "+format, append([]any{name}, args...)...))
	}
	if e.Concurrency < 1 {
		bad("SWITCHYARD_CONCURRENCY", "%d must be at least 1", e.Concurrency)
	}
	if e.InteractiveShare < 0 || e.InteractiveShare >= 1 {
		bad("SWITCHYARD_INTERACTIVE_SHARE", "%v must be at least 0 and below 1", e.InteractiveShare)
	}
	if e.Replicas < 1 || e.Replicas > 5 {
		bad("SWITCHYARD_REPLICAS", "%d must be 1 to 5", e.Replicas)
	}
	if e.AckWait < time.Second {
		bad("SWITCHYARD_ACK_WAIT", "%s must be at least 1s", e.AckWait)
	}
	if e.MaxDeliver < 2 {
		bad("SWITCHYARD_MAX_DELIVER", "%d must be at least 2 (the last delivery is answered with an error)", e.MaxDeliver)
	}
	if e.ValidationRetries < 0 {
		bad("SWITCHYARD_VALIDATION_RETRIES", "%d is negative", e.ValidationRetries)
	}
	if e.HTTPMaxBody < 1024 {
		bad("SWITCHYARD_HTTP_MAX_BODY", "%d must be at least 1024", e.HTTPMaxBody)
	}
	if e.HTTPWriteTimeout < time.Second {
		bad("SWITCHYARD_HTTP_WRITE_TIMEOUT", "%s must be at least 1s", e.HTTPWriteTimeout)
	}
	if e.Prefix == "" || strings.ContainsAny(e.Prefix, " *>") {
		bad("SWITCHYARD_PREFIX", "%q is not a subject prefix", e.Prefix)
	}
	switch strings.ToLower(e.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", e.LogLevel)
	}
	switch e.LogFormat {
	case "auto", "text", "json":
	default:
		bad("LOG_FORMAT", "%q is not auto, text or json", e.LogFormat)
	}
	if e.NATSPingInterval < 100*time.Millisecond {
		bad("NATS_PING_INTERVAL", "%s must be at least 100ms", e.NATSPingInterval)
	}
	if e.NATSMaxPingsOut < 1 {
		bad("NATS_MAX_PINGS_OUT", "%d must be at least 1", e.NATSMaxPingsOut)
	}
	if (e.NATSTLSCert == "") != (e.NATSTLSKey == "") {
		bad("NATS_TLS_CERT", "and NATS_TLS_KEY must be set together")
	}
	return errors.Join(errs...)
}
