// Command worker is a Switchyard worker: it consumes chat jobs of its model
// groups from NATS JetStream, calls the providers through the policy router
// and publishes streamed events and one result per job.
//
// Settings come from the environment (worker --help lists them and
// docs/configuration.md is their reference); model groups from the YAML file named by SWITCHYARD_CONFIG. With
// no NATS_URL it runs an embedded NATS server, and with no model file it
// serves a "demo" group on the mock provider, so it runs on a fresh machine
// with no keys.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lmittmann/tint"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/spell"
)

func main() {
	args, err := parseArgs(os.Args[1:], os.Stdout)
	if errors.Is(err, pflag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n(worker --help lists the flags and variables)\n", err)
		os.Exit(2)
	}
	env, err := config.LoadEnv()
	if err != nil {
		for _, e := range splitErrors(err) {
			fmt.Fprintln(os.Stderr, e)
		}
		os.Exit(2)
	}
	log := newLogger(env)
	config.ApplyGCDefaults()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if args.check {
		os.Exit(runCheck(ctx, env, os.Stdout))
	}
	if args.printConfig {
		os.Exit(runPrintConfig(env, os.Stdout))
	}
	if err := app.Run(ctx, env, app.Options{Logger: log}); err != nil {
		// One record per error: a model file with three mistakes gives
		// three lines, not one line of escaped newlines.
		for _, e := range splitErrors(err) {
			log.Error("worker failed", slog.String("error", e.Error()))
		}
		os.Exit(1)
	}
	log.Info("worker stopped")
}

// flags are the command line's: what to do instead of running.
type flags struct {
	check       bool // probe every deployment and exit
	printConfig bool // print the model file as a native one and exit
}

// parseArgs reads the command line: --check, --print-config, --help, and nothing else,
// since settings come from the environment. A flag that looks like a
// variable (--config) is answered with the variable's name.
func parseArgs(args []string, out io.Writer) (f flags, err error) {
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&f.check, "check", false, "load the config, make one minimal call per deployment, print what works, and exit")
	fs.BoolVar(&f.printConfig, "print-config", false, "print the model file as Switchyard's own (a LiteLLM config.yaml translated), and exit")
	fs.Usage = func() { usage(out, fs) }
	err = fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		return flags{}, err
	}
	if ne, ok := errors.AsType[*pflag.NotExistError](err); ok {
		return flags{}, unknownFlag(ne.GetSpecifiedName(), args)
	}
	if err != nil {
		return flags{}, err
	}
	if fs.NArg() > 0 {
		return flags{}, fmt.Errorf("worker takes no arguments, got %q: settings come from the environment", strings.Join(fs.Args(), " "))
	}
	if f.check && f.printConfig {
		return flags{}, errors.New("--check and --print-config: one at a time")
	}
	return f, nil
}

// unknownFlag names the environment variable a mistaken flag stands for.
func unknownFlag(name string, args []string) error {
	msg := fmt.Sprintf("unknown flag --%s", name)
	want := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	var names []string
	for _, v := range config.Variables() {
		names = append(names, v.Name)
	}
	for _, cand := range []string{want, "SWITCHYARD_" + want, "NATS_" + want} {
		if v, ok := spell.Closest(cand, names); ok {
			value := "..."
			for i, a := range args {
				if a == "--"+name && i+1 < len(args) {
					value = args[i+1]
				} else if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
					value = v
				}
			}
			return fmt.Errorf("%s: settings come from the environment; did you mean %s=%s?", msg, v, value)
		}
	}
	return fmt.Errorf("%s: settings come from the environment", msg)
}

func usage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprint(w, `usage: worker [--check | --print-config]

Consumes the jobs of its model groups from NATS JetStream, calls the
providers and publishes events and one result per job. With no NATS_URL it
runs an embedded NATS server; with no SWITCHYARD_CONFIG it serves the
built-in demo group on the mock provider. docs/configuration.md is the
reference of every variable and model-file key.

flags:
      --check          load the config, make one minimal call per deployment, print what works, and exit
      --print-config   print the model file as Switchyard's own (a LiteLLM config.yaml translated:
                       docs/litellm.md), and exit
  -h, --help           this help

environment:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range config.Variables() {
		def := v.Default
		if def != "" {
			def = " (default " + def + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", v.Name, v.Help, def)
	}
	_ = tw.Flush()
	fmt.Fprint(w, `
signals:
  SIGINT, SIGTERM  stop taking jobs, give running ones SWITCHYARD_SHUTDOWN_GRACE, hand back the rest, exit 0
  SIGHUP           reload the model file (deployments, options and keys of known groups and tenants)

exit status:
  0  stopped by a signal, or --check found every deployment working
  1  failed at start (a model file error, a taken port: the log says what) or while running,
     or --check found a deployment failing
  2  the command line or an environment variable is wrong (the message says what to change)
`)
}

// splitErrors unwraps errors.Join: one error a line.
func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []error{err}
}

func newLogger(env config.Env) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(env.LogLevel))
	format := env.LogFormat
	if format == "auto" {
		format = "json"
		if term.IsTerminal(int(os.Stderr.Fd())) {
			format = "text"
		}
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(tint.NewTextHandler(os.Stderr, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !term.IsTerminal(int(os.Stderr.Fd()))}))
}
