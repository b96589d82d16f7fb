package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard/switchyard/internal/heartbeat"
)

// Metric families of the workers' heartbeats that the limits are read from
// (internal/metrics exports them).
const (
	famLearnedLimit = "switchyard_deployment_concurrency_limit"
	famMaxConc      = "switchyard_deployment_max_concurrency"
	famDepInFlight  = "switchyard_deployment_calls_in_flight"
)

// deploymentLimit is the concurrency limit in force on one deployment,
// fleet-wide: each worker's limiter is its own, so the fleet sends the
// deployment at most the sum of its workers' limits.
type deploymentLimit struct {
	Group      string `json:"group"`
	Deployment string `json:"deployment"`
	// Kind is "learned" (adaptive_concurrency: the limit the workers'
	// limiters learned) or "configured" (max_concurrency).
	Kind string `json:"kind"`
	// Limit is the sum over Workers; MinPerWorker and MaxPerWorker are
	// the smallest and largest of one worker.
	Limit        int `json:"limit"`
	MinPerWorker int `json:"min_per_worker"`
	MaxPerWorker int `json:"max_per_worker"`
	// Workers is how many workers report the limit.
	Workers int `json:"workers"`
	// InFlight is the calls in flight to the deployment from those workers.
	InFlight int `json:"in_flight"`
}

// readLimits reads the deployments' concurrency limits from the workers'
// heartbeats (none when no worker beats).
func readLimits(ctx context.Context, js jetstream.JetStream) ([]deploymentLimit, error) {
	workers, err := heartbeat.Read(ctx, js)
	if err != nil {
		return nil, err
	}
	return limitsOf(workers), nil
}

type depKey struct{ group, deployment string }

// limitsOf sums the workers' limit gauges per deployment: a deployment
// that any worker reports a learned limit for is listed with the learned
// limits, else with the configured max_concurrency; one with neither has
// no limit and is not listed.
func limitsOf(workers []heartbeat.Worker) []deploymentLimit {
	learned := map[depKey][]int{}
	configured := map[depKey][]int{}
	inFlight := map[depKey]map[int]int{} // by worker index
	for i, w := range workers {
		gauges(w.Families[famLearnedLimit], func(k depKey, v int) { learned[k] = append(learned[k], v) })
		gauges(w.Families[famMaxConc], func(k depKey, v int) { configured[k] = append(configured[k], v) })
		gauges(w.Families[famDepInFlight], func(k depKey, v int) {
			if inFlight[k] == nil {
				inFlight[k] = map[int]int{}
			}
			inFlight[k][i] += v
		})
	}
	var out []deploymentLimit
	add := func(k depKey, kind string, vs []int) {
		l := deploymentLimit{Group: k.group, Deployment: k.deployment, Kind: kind, Workers: len(vs),
			MinPerWorker: slices.Min(vs), MaxPerWorker: slices.Max(vs)}
		for _, v := range vs {
			l.Limit += v
		}
		for _, n := range inFlight[k] {
			l.InFlight += n
		}
		out = append(out, l)
	}
	for k, vs := range learned {
		add(k, "learned", vs)
	}
	for k, vs := range configured {
		if learned[k] == nil {
			add(k, "configured", vs)
		}
	}
	slices.SortFunc(out, func(a, b deploymentLimit) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Deployment, b.Deployment))
	})
	return out
}

// gauges calls f with each gauge of mf by group and deployment.
func gauges(mf *dto.MetricFamily, f func(depKey, int)) {
	if mf == nil {
		return
	}
	for _, m := range mf.GetMetric() {
		var k depKey
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "group":
				k.group = l.GetValue()
			case "deployment":
				k.deployment = l.GetValue()
			}
		}
		f(k, int(m.GetGauge().GetValue()))
	}
}

// printLimits writes the limits table (nothing when there is none).
func printLimits(w io.Writer, limits []deploymentLimit) {
	if len(limits) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "GROUP\tDEPLOYMENT\tLIMIT\tKIND\tPER WORKER\tWORKERS\tIN FLIGHT")
	for _, l := range limits {
		per := fmt.Sprint(l.MinPerWorker)
		if l.MaxPerWorker != l.MinPerWorker {
			per = fmt.Sprintf("%d-%d", l.MinPerWorker, l.MaxPerWorker)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%d\t%d\n", l.Group, l.Deployment, l.Limit, l.Kind, per, l.Workers, l.InFlight)
	}
}
