package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Env is the worker's process configuration, read from the environment.
// Defaults are in the envDefault tags.
type Env struct {
	// NATSURL is a comma-separated list of server URLs. Empty: the worker
	// starts an embedded server (see EmbeddedAddr, DataDir).
	NATSURL      string `env:"NATS_URL"`
	NATSUser     string `env:"NATS_USER"`
	NATSPassword Secret `env:"NATS_PASSWORD"`
	NATSToken    Secret `env:"NATS_TOKEN"`
	// NATSCreds is a credentials file (JWT + NKey seed).
	NATSCreds string `env:"NATS_CREDS"`
	// NATSNKeySeed is a file holding an NKey seed.
	NATSNKeySeed string `env:"NATS_NKEY_SEED"`
	NATSTLSCA    string `env:"NATS_TLS_CA"`
	NATSTLSCert  string `env:"NATS_TLS_CERT"`
	NATSTLSKey   string `env:"NATS_TLS_KEY"`

	// EmbeddedAddr is where the embedded server listens.
	EmbeddedAddr string `env:"SWITCHYARD_EMBEDDED_ADDR" envDefault:"127.0.0.1:4222"`
	// DataDir holds the embedded server's JetStream files.
	DataDir string `env:"SWITCHYARD_DATA_DIR" envDefault:"./data"`
	// SyncAlways fsyncs every JetStream write of the embedded server.
	SyncAlways bool `env:"SWITCHYARD_SYNC_ALWAYS"`

	// ConfigPath is the YAML model file. Empty: a built-in "demo" group on
	// the mock provider.
	ConfigPath string `env:"SWITCHYARD_CONFIG"`
	// Groups served by this worker (comma-separated). Empty: every group of
	// the model file.
	Groups []string `env:"SWITCHYARD_GROUPS" envSeparator:","`
	// Concurrency is the number of jobs run at once per group.
	Concurrency int `env:"SWITCHYARD_CONCURRENCY" envDefault:"128"`
	// Prefix of every subject.
	Prefix string `env:"SWITCHYARD_PREFIX" envDefault:"llm"`
	// Replicas of the streams and buckets this worker creates (3 on a cluster).
	Replicas int `env:"SWITCHYARD_REPLICAS" envDefault:"1"`
	// AckWait of the group consumers.
	AckWait time.Duration `env:"SWITCHYARD_ACK_WAIT" envDefault:"30s"`
	// MaxDeliver bounds deliveries of one job.
	MaxDeliver int `env:"SWITCHYARD_MAX_DELIVER" envDefault:"5"`
	// ShutdownGrace is how long running jobs may finish after SIGTERM.
	ShutdownGrace time.Duration `env:"SWITCHYARD_SHUTDOWN_GRACE" envDefault:"25s"`
	// MaxJobTime bounds one job.
	MaxJobTime time.Duration `env:"SWITCHYARD_MAX_JOB_TIME" envDefault:"10m"`
	// DurableEvents stores events in LLM_RESULTS so streams can be replayed.
	DurableEvents bool `env:"SWITCHYARD_DURABLE_EVENTS"`
	// EventsMaxAge is how long stored events are kept (with DurableEvents).
	EventsMaxAge time.Duration `env:"SWITCHYARD_EVENTS_MAX_AGE" envDefault:"1h"`
	// ResultsMaxAge is how long results are kept.
	ResultsMaxAge time.Duration `env:"SWITCHYARD_RESULTS_MAX_AGE" envDefault:"24h"`
	// FleetState shares breaker state and rate counters through NATS KV.
	FleetState bool `env:"SWITCHYARD_FLEET_STATE" envDefault:"true"`
	// ValidationRetries is the default number of re-asks of a structured
	// output that does not validate.
	ValidationRetries int `env:"SWITCHYARD_VALIDATION_RETRIES" envDefault:"2"`

	// MetricsAddr serves /metrics, /healthz and /readyz; "off" turns them off.
	MetricsAddr string `env:"SWITCHYARD_METRICS_ADDR" envDefault:"127.0.0.1:9464"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is auto (tint on a terminal, JSON otherwise), text or json.
	LogFormat string `env:"LOG_FORMAT" envDefault:"auto"`
}

// LoadEnv reads and checks the environment.
func LoadEnv() (Env, error) {
	e, err := env.ParseAs[Env]()
	if err != nil {
		return e, namedEnvError(err)
	}
	return e, e.validate()
}

// namedEnvError rewrites env's parse errors, which name struct fields, to
// name the environment variable instead.
func namedEnvError(err error) error {
	agg, ok := errors.AsType[env.AggregateError](err)
	if !ok {
		return fmt.Errorf("config: %w", err)
	}
	var errs []error
	t := reflect.TypeFor[Env]()
	for _, e := range agg.Errors {
		if pe, ok := errors.AsType[env.ParseError](e); ok {
			if f, ok := t.FieldByName(pe.Name); ok {
				errs = append(errs, fmt.Errorf("config: %s: %w", f.Tag.Get("env"), pe.Err))
				continue
			}
		}
		errs = append(errs, fmt.Errorf("config: %w", e))
	}
	return errors.Join(errs...)
}

func (e Env) validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: "+format, append([]any{name}, args...)...))
	}
	if e.Concurrency < 1 {
		bad("SWITCHYARD_CONCURRENCY", "%d must be at least 1", e.Concurrency)
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
	if (e.NATSTLSCert == "") != (e.NATSTLSKey == "") {
		bad("NATS_TLS_CERT", "and NATS_TLS_KEY must be set together")
	}
	return errors.Join(errs...)
}
