// Command submit is Switchyard's CLI: stream one prompt, cancel a job, and
// (see the subcommands) run batches, watch streams, show status and load-test.
//
//	submit [flags] "prompt"      stream one prompt (- reads it from stdin)
//	submit cancel <job-id>       cancel a job
//	submit help                  every subcommand, flag and exit status
//
// It connects to NATS_URL, else to the worker's embedded server at
// nats://127.0.0.1:4222.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/pkg/bus"
)

// exitError carries a process exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		code := 1
		if ee, ok := errors.AsType[*exitError](err); ok {
			code = ee.code
		}
		if err.Error() != "" {
			fmt.Fprintln(os.Stderr, "submit:", err)
		}
		os.Exit(code)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "cancel":
			return cmdCancel(ctx, args[1:], stderr)
		case "batch":
			return cmdBatch(ctx, args[1:], stdout, stderr)
		case "watch":
			return cmdWatch(ctx, args[1:], stdout, stderr)
		case "status":
			return cmdStatus(ctx, args[1:], stdout, stderr)
		case "bench":
			return cmdBench(ctx, args[1:], stdout, stderr)
		case "keys":
			return cmdKeys(ctx, args[1:], stdout, stderr)
		case "dlq":
			return cmdDLQ(ctx, args[1:], stdin, stdout, stderr)
		case "jobs":
			return cmdJobs(ctx, args[1:], stdout, stderr)
		case "help":
			if len(args) > 1 && slices.Contains(subcommands, args[1]) && args[1] != "help" {
				return dispatch(ctx, []string{args[1], "--help"}, stdin, stdout, stderr)
			}
			usage(stderr)
			return nil
		case "-h", "--help":
			usage(stderr)
			return nil
		}
	}
	return cmdPrompt(ctx, args, stdin, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  submit [flags] "prompt"        stream one prompt to a group (- reads the prompt from stdin)
  submit cancel <job-id>         cancel a queued or running job
  submit batch IN.jsonl -o OUT.jsonl [flags]
                                 run an OpenAI or Anthropic batch file; re-running resumes
  submit watch <job-id> [--from-seq N]
                                 replay and follow a job's token stream (durable events)
  submit status [--json]         streams, consumers per group, in flight, redeliveries, DLQ, workers
  submit bench [flags]           load-test a group: jobs/s, first-chunk and completion p50/p99
  submit bench --compare         raw JetStream baseline vs Switchyard on this machine (make bench)
  submit keys create|list|revoke|hash
                                 the HTTP gateway's API keys (stored hashed in NATS KV)
  submit jobs ls|show            find jobs (queued, running, answered, dead) and show one
  submit dlq list|show|replay|purge
                                 dead letters: reasons, inspect, replay (the job runs again), purge
  submit help <subcommand>       a subcommand's flags (as: submit <subcommand> --help)

A prompt that is one word close to a subcommand is refused (did you mean ...?);
send it with -- before it: submit -- stauts.

flags of a prompt:
`)
	fmt.Fprint(w, flagUsages(promptCommand(&promptFlags{}, w).fs))
	fmt.Fprint(w, `
environment:
  NATS_URL            the server (default nats://127.0.0.1:4222, the worker's embedded one)
  NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, NATS_NKEY_SEED, NATS_TLS_*
                      credentials and TLS, as for the worker
  SWITCHYARD_PREFIX   subject prefix (default llm)
  SWITCHYARD_TENANT   the tenant to act as: its namespace (llm.t.<tenant>.…) and
                      inbox prefix _INBOX.<tenant>; its NATS user must be allowed them

`+exitStatuses)
}

// connect opens a NATS connection from the environment (NATS_URL and the
// same credential variables as the worker), for tenant ("" anonymous): a
// tenant's connection uses the inbox prefix _INBOX.<tenant>, the only one
// its permissions let it subscribe to.
func connect(tenant string) (*nats.Conn, config.Env, error) {
	env, err := config.LoadEnv()
	if err != nil {
		return nil, env, err
	}
	url := env.NATSURL
	if url == "" {
		url = "nats://" + env.EmbeddedAddr
	}
	opts, err := env.NATSOptions("switchyard-submit")
	if err != nil {
		return nil, env, err
	}
	opts = append(opts, nats.MaxReconnects(5))
	if tenant != "" {
		if !bus.ValidTenant(tenant) {
			return nil, env, fmt.Errorf("tenant %q is not a tenant name: [a-z0-9][a-z0-9_-]{0,31}, exactly", tenant)
		}
		opts = append(opts, nats.CustomInboxPrefix("_INBOX."+tenant))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, env, fmt.Errorf("connect to NATS at %s: %w (is a worker running? try: make run)", config.RedactURL(url), err)
	}
	return nc, env, nil
}

// connectJS connects (see connect) and opens JetStream, for the commands
// that read streams and buckets directly. The caller closes the connection.
func connectJS() (*nats.Conn, config.Env, jetstream.JetStream, error) {
	nc, env, err := connect("") // an operator's view, in no tenant's namespace
	if err != nil {
		return nil, env, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, env, nil, err
	}
	return nc, env, js, nil
}

func newClient(nc *nats.Conn, env config.Env, enc bus.Encoding, tenant string) (*bus.Client, error) {
	return bus.NewClient(nc, bus.WithSubjects(bus.Subjects{Prefix: env.Prefix}), bus.WithTenant(tenant), bus.WithEncoding(enc))
}

// dial connects (see connect) and returns a client speaking enc, as the
// tenant SWITCHYARD_TENANT names ("" the anonymous tenant). The caller
// closes the connection.
func dial(enc bus.Encoding) (*nats.Conn, *bus.Client, error) {
	return dialAs(enc, os.Getenv("SWITCHYARD_TENANT"))
}

// dialAs is dial as tenant.
func dialAs(enc bus.Encoding, tenant string) (*nats.Conn, *bus.Client, error) {
	nc, env, err := connect(tenant)
	if err != nil {
		return nil, nil, err
	}
	c, err := newClient(nc, env, enc, tenant)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, c, nil
}

func cmdCancel(ctx context.Context, args []string, stderr io.Writer) error {
	cmd := newCommand("submit cancel", "submit cancel <job-id>", `
Cancels a job: a running job stops within one chunk and a queued one is
answered cancelled when a worker picks it up. Either way its result has
status error and code cancelled. It says whether a worker running the job
confirmed (within --wait); exit status 0 once the cancel is sent.`, stderr)
	timeout := cmd.fs.Duration("timeout", 10*time.Second, "give up sending the cancel after this long")
	wait := cmd.fs.Duration("wait", 2*time.Second, "how long to wait for the worker running the job to confirm")
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	if err := cmd.jobIDArgs(pos, *timeout); err != nil {
		return err
	}
	nc, c, err := dial(bus.Msgpack)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout+max(*wait, 0))
	defer cancel()
	id := pos[0]
	running, err := c.CancelConfirmed(ctx, id, max(*wait, 0))
	if err != nil {
		return err
	}
	if running {
		fmt.Fprintf(stderr, "cancel sent: job %s was running and its worker confirmed that it stops; its result is cancelled\n", id)
	} else {
		fmt.Fprintf(stderr, "cancel sent: no worker running job %s confirmed within %s, so it is queued (answered cancelled when a worker picks it up), finished, or unknown\n", id, shortDuration(wait.String()))
	}
	return nil
}
