package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/pkg/llm"
)

// runCheck loads the model file, resolves every credential and makes one
// minimal call per deployment, printing a table of what works. It returns the
// process exit code: 0 when every deployment answered.
func runCheck(ctx context.Context, env config.Env, out io.Writer) int {
	models, err := config.LoadModels(env.ConfigPath)
	if err != nil {
		fmt.Fprintln(out, err)
		return 2
	}
	groups, err := models.Build(ctx)
	if err != nil {
		fmt.Fprintln(out, err)
		return 2
	}
	if ns := models.Notices(); len(ns) > 0 {
		fmt.Fprintln(out, "accepted without effect:")
		for _, n := range ns {
			fmt.Fprintln(out, "  "+n.String())
		}
		fmt.Fprintln(out)
	}
	// The providers scrub their keys from errors; this is the second line,
	// with every credential of the file and the environment.
	sc := llm.NewScrubber(append(models.Secrets(), env.Secrets()...))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tDEPLOYMENT\tMODEL\tSTATUS\tTTFT\tDETAIL")
	failed := 0
	for _, g := range groups {
		for _, d := range g.Deployments {
			status, ttft, detail := probe(ctx, d.Provider, d.Model)
			if status != "ok" {
				failed++
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", g.Name, d.Name, d.Model, status, ttft, sc.Scrub(detail))
		}
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	if failed > 0 {
		fmt.Fprintf(out, "\n%d deployment(s) failed\n", failed)
		return 1
	}
	return 0
}

// probe asks for one token. Errors are printed by kind and the provider's
// message, which the provider packages build without credentials.
func probe(ctx context.Context, p llm.Provider, model string) (status, ttft, detail string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	s, err := p.Stream(ctx, &llm.Request{Model: model, MaxTokens: 1, Messages: []llm.Message{{Role: llm.RoleUser, Content: "Say OK."}}})
	if err != nil {
		return "FAIL", "-", err.Error()
	}
	defer s.Close()
	first := time.Duration(0)
	for s.Next() {
		if first == 0 {
			first = time.Since(start)
		}
	}
	if err := s.Err(); err != nil {
		return "FAIL", "-", err.Error()
	}
	return "ok", first.Round(time.Millisecond).String(), ""
}

// runPrintConfig prints the model file as a native one (see
// config.PrintModels) and returns the exit code.
func runPrintConfig(env config.Env, out io.Writer) int {
	b, err := config.PrintModels(env.ConfigPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := out.Write(b); err != nil {
		return 1
	}
	return 0
}
