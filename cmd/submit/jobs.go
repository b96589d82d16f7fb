package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard/switchyard/internal/ops"
	"github.com/switchyard/switchyard/pkg/bus"
)

// cmdJobs finds jobs and shows one (internal/ops, as the console does).
func cmdJobs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := newCommand("submit jobs", "submit jobs ls [filters] | show <job-id> [--tenant T]", `
Finds jobs in the fleet's streams. "ls" lists them newest first: queued and
running ones from the request streams, answered ones from the results
stream (kept SWITCHYARD_RESULTS_MAX_AGE), dead ones (--status dead) from the
dead-letter stream. "show" prints one job: status, result, attempts with
their errors and durations, cost, its dead letters, and its request while a
stream still keeps it (secrets redacted; a request stream drops a job once
it is answered).`, stderr)
	tenant := cmd.fs.StringP("tenant", "t", "", `only this tenant's jobs ("" with --tenant= for the anonymous tenant)`)
	group := cmd.fs.StringP("group", "g", "", "only this group's jobs")
	status := cmd.fs.StringP("status", "s", "", "only jobs in this state: "+strings.Join(ops.Statuses, ", "))
	since := cmd.fs.Duration("since", time.Hour, "only jobs of the last this long")
	limit := cmd.fs.IntP("limit", "n", 50, "list at most this many")
	jsonOut := cmd.fs.Bool("json", false, "print JSON")
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return cmd.usageErr("missing the action: ls or show")
	}
	action, rest := pos[0], pos[1:]
	switch action {
	case "ls", "list":
		if len(rest) > 0 {
			return cmd.usageErr("submit jobs ls takes filters, not arguments (got %q)", strings.Join(rest, " "))
		}
	case "show":
		if len(rest) != 1 {
			return cmd.usageErr("submit jobs show takes one job id")
		}
	default:
		return cmd.usageErr("%q is not an action: ls or show", action)
	}
	if *status != "" && !slices.Contains(ops.Statuses, *status) {
		return cmd.usageErr("--status %s: want one of %s", *status, strings.Join(ops.Statuses, ", "))
	}
	var tp *string
	if cmd.fs.Changed("tenant") {
		tp = tenant
	}
	nc, env, js, err := connectJS()
	if err != nil {
		return err
	}
	defer nc.Close()
	jobs := ops.NewJobs(js, bus.Subjects{Prefix: env.Prefix})
	if action == "show" {
		job, err := jobs.Get(ctx, tp, rest[0])
		if errors.Is(err, ops.ErrNotFound) {
			return fmt.Errorf("no stream knows job %s (results are kept SWITCHYARD_RESULTS_MAX_AGE)", rest[0])
		}
		if err != nil {
			return err
		}
		if *jsonOut {
			return writeJSONOut(stdout, job)
		}
		printJob(stdout, job)
		return nil
	}
	p, err := jobs.List(ctx, ops.Query{Tenant: tp, Group: *group, Status: *status, Since: time.Now().Add(-*since), Limit: *limit})
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSONOut(stdout, p)
	}
	printJobList(stdout, stderr, p)
	return nil
}

// printJobList prints a listing as a table.
func printJobList(stdout, stderr io.Writer, p *ops.Page) {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tJOB\tTENANT\tGROUP\tSTATUS\tCODE\tDEPLOYMENT\tTOKENS\tCOST\tTOTAL")
	for _, j := range p.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Time.Local().Format(time.DateTime), j.ID, tenantLabel(j.Tenant), j.Group,
			j.Status, dash(j.Code), dash(j.Deployment), dashInt(j.Tokens), cost(j.CostUSD), ms(j.TotalMS))
	}
	_ = tw.Flush()
	if len(p.Jobs) == 0 {
		fmt.Fprintf(stdout, "(no job since %s)\n", p.Since.Local().Format(time.DateTime))
	}
	if p.Truncated {
		fmt.Fprintln(stderr, "a stream had more jobs than one listing reads: narrow --since, --group or --tenant")
	}
}

func printJob(w io.Writer, j *ops.Job) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "job\t%s\ntenant\t%s\ngroup\t%s\nstatus\t%s\n", j.ID, tenantLabel(j.Tenant), dash(j.Group), j.Status)
	if r := j.Result; r != nil {
		fmt.Fprintf(tw, "answered\t%s\n", j.ResultTime.Local().Format(time.RFC3339))
		if r.Error != nil {
			fmt.Fprintf(tw, "error\t%s: %s\n", r.Error.Code, ops.RedactText(r.Error.Message))
		}
		fmt.Fprintf(tw, "deployment\t%s\nmodel\t%s\n", dash(r.Deployment), dash(r.Model))
		if r.Usage != nil {
			fmt.Fprintf(tw, "tokens\t%d in, %d out\n", r.Usage.PromptTokens, r.Usage.CompletionTokens)
		}
		fmt.Fprintf(tw, "cost\t%s\ntimings\tqueued %s, first token %s, total %s\n", cost(r.CostUSD), ms(r.Timings.QueuedMS), ms(r.Timings.TTFTMS), ms(r.Timings.TotalMS))
	}
	_ = tw.Flush()
	if r := j.Result; r != nil && len(r.Attempts) > 0 {
		fmt.Fprintln(w, "\nattempts:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tDEPLOYMENT\tDURATION\tERROR")
		for i, a := range r.Attempts {
			e := "-"
			if a.ErrorCode != "" {
				e = a.ErrorCode + ": " + oneLine(ops.RedactText(a.Message), 100)
			}
			dep := a.Deployment
			if a.Hedge {
				dep += " (hedge)"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i+1, dep, ms(a.DurationMS), e)
		}
		_ = tw.Flush()
	}
	if r := j.Result; r != nil && r.Text != "" {
		fmt.Fprintf(w, "\nanswer:\n%s\n", ops.RedactText(r.Text))
	}
	for _, d := range j.DeadLetters {
		rep := "not replayed"
		if d.Replayed != nil {
			rep = "replayed " + d.Replayed.At.Local().Format(time.RFC3339) + " by " + d.Replayed.By
		}
		fmt.Fprintf(w, "\ndead letter %d (%s): %s: %s; %s\n", d.Seq, d.Time.Local().Format(time.RFC3339), d.Code, d.Reason, rep)
	}
	if j.Request == nil {
		fmt.Fprintln(w, "\n(the request is no longer kept: a request stream drops a job once it is answered)")
	}
	printRequest(w, j.Request)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dashInt(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func cost(usd float64) string {
	if usd == 0 {
		return "-"
	}
	return fmt.Sprintf("$%.6f", usd)
}

func ms(n int64) string {
	if n == 0 {
		return "-"
	}
	return (time.Duration(n) * time.Millisecond).String()
}
