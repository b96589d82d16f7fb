package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchyard/switchyard/internal/spell"
)

// The command-line conventions every subcommand follows: GNU flags (--name,
// with a one-letter alias shown beside it), --help on every subcommand
// listing all its flags, one line naming a mistake (and what was probably
// meant) instead of a usage dump, and these exit statuses.
const exitStatuses = `exit status:
  0    done (every job's result was ok)
  1    a job ended with an error result, or could not be run
  2    the command line is wrong (the message says what to change)
  130  interrupted (Ctrl-C); published jobs go on in the fleet
`

// subcommands are the words that are not prompts, in help order.
var subcommands = []string{"cancel", "batch", "watch", "status", "bench", "keys", "jobs", "dlq", "help"}

// command is one subcommand's flags and help.
type command struct {
	name  string // "submit batch"
	usage string // what follows "usage: "
	about string // a paragraph saying what it does
	fs    *pflag.FlagSet
	out   io.Writer
}

func newCommand(name, usage, about string, out io.Writer) *command {
	c := &command{name: name, usage: usage, about: about, out: out}
	c.fs = pflag.NewFlagSet(name, pflag.ContinueOnError)
	c.fs.SetOutput(out)
	c.fs.SortFlags = false
	c.fs.Usage = c.printHelp
	return c
}

func (c *command) printHelp() {
	fmt.Fprintf(c.out, "usage: %s\n\n%s\n", c.usage, strings.TrimSpace(c.about))
	if c.fs.HasFlags() {
		fmt.Fprintf(c.out, "\nflags:\n%s", flagUsages(c.fs))
	}
	fmt.Fprintf(c.out, "\n%s", exitStatuses)
}

// errHelp is returned once --help has been printed: exit 0.
var errHelp = errors.New("")

// jobIDArgs checks the positional arguments and --timeout of a command on
// one job (submit cancel, submit watch): exactly one job id, a timeout
// above 0.
func (c *command) jobIDArgs(pos []string, timeout time.Duration) error {
	switch len(pos) {
	case 0:
		return c.usageErr("missing the job id: %s <job-id>", c.name)
	case 1:
	default:
		return c.usageErr("one job id at a time, got %d arguments", len(pos))
	}
	if timeout <= 0 {
		return c.usageErr("--timeout %s: want more than 0", timeout)
	}
	return nil
}

// usageErr is a mistake on the command line: exit status 2, one line, and
// where to read more.
func (c *command) usageErr(format string, args ...any) error {
	return &exitError{2, fmt.Errorf("%s\n(%s --help lists the flags)", fmt.Sprintf(format, args...), c.name)}
}

// parse parses args, flags anywhere among the arguments, and returns the
// positional ones. Mistakes come back as usage errors that name the flag.
func (c *command) parse(args []string) ([]string, error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		// A Go-style -json would be read as -j -s -o -n.
		if name, ok := strings.CutPrefix(a, "-"); ok && len(name) > 1 && name[0] != '-' {
			name, _, _ = strings.Cut(name, "=")
			if c.fs.Lookup(name) != nil {
				return nil, c.usageErr("-%s: long flags take two dashes: --%s", name, name)
			}
		}
	}
	err := c.fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		return nil, errHelp
	}
	if err != nil {
		return nil, c.flagErr(err)
	}
	return c.fs.Args(), nil
}

func (c *command) flagErr(err error) error {
	if ne, ok := errors.AsType[*pflag.NotExistError](err); ok {
		name := ne.GetSpecifiedName()
		if group := ne.GetSpecifiedShortnames(); group != "" {
			if s, ok := spell.Closest(group, c.flagNames()); ok && len(group) > 1 {
				return c.usageErr("unknown flag -%s; did you mean --%s?", group, s)
			}
			return c.usageErr("unknown flag -%s", name)
		}
		msg := fmt.Sprintf("unknown flag --%s", name)
		if s, ok := spell.Closest(name, c.flagNames()); ok {
			msg += fmt.Sprintf("; did you mean --%s?", s)
		}
		return c.usageErr("%s", msg)
	}
	if ve, ok := errors.AsType[*pflag.InvalidValueError](err); ok {
		return c.usageErr("--%s %s: %s", ve.GetFlag().Name, ve.GetValue(), valueHint(ve))
	}
	if ve, ok := errors.AsType[*pflag.ValueRequiredError](err); ok {
		return c.usageErr("--%s needs a value", ve.GetFlag().Name)
	}
	return c.usageErr("%v", err)
}

// valueHint says what a flag's value should look like.
func valueHint(ve *pflag.InvalidValueError) string {
	switch ve.GetFlag().Value.Type() {
	case "duration":
		if _, err := strconv.ParseFloat(ve.GetValue(), 64); err == nil {
			return fmt.Sprintf("needs a unit, for example %ss", ve.GetValue())
		}
		return "want a duration such as 30s, 5m or 1h30m"
	case "int", "int64", "uint64":
		return "want a whole number"
	case "float64":
		return "want a number"
	case "bool":
		return "want true or false"
	}
	return errors.Unwrap(ve).Error()
}

func (c *command) flagNames() []string {
	var names []string
	c.fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	})
	return names
}

// optFloat is a float flag whose unset state means "the provider's
// default"; its help shows no default.
type optFloat struct {
	v   float64
	set bool
}

func (o *optFloat) String() string {
	if !o.set {
		return ""
	}
	return strconv.FormatFloat(o.v, 'g', -1, 64)
}

func (o *optFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return errors.New("want a number")
	}
	o.v, o.set = v, true
	return nil
}

func (o *optFloat) Type() string { return "float64" }

// flagUsages lists the flags, one a line, as GNU tools do:
//
//	-g, --group group   model group (default "demo")
//	    --json          print the result as JSON
//
// pflag's own listing writes --json[=true|false] for every boolean and
// 5m0s for five minutes.
func flagUsages(fs *pflag.FlagSet) string {
	type row struct{ left, right string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		name, usage := pflag.UnquoteUsage(f)
		if f.Value.Type() != "bool" && name != "" {
			left += " " + name
		}
		if d := defaultText(f); d != "" {
			usage += " (default " + d + ")"
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	})
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s  %s\n", width, r.left, r.right)
	}
	return b.String()
}

// defaultText is a flag's default as a user would type it, or "" when the
// default is the zero value (or, for optional values, "not set").
func defaultText(f *pflag.Flag) string {
	switch d := f.DefValue; {
	case d == "" || d == "0" || d == "false" || d == "[]":
		return ""
	case f.Value.Type() == "duration":
		return shortDuration(d)
	case f.Value.Type() == "string":
		return strconv.Quote(d)
	default:
		return d
	}
}

// shortDuration writes 5m0s as 5m and 1h0m0s as 1h.
func shortDuration(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
