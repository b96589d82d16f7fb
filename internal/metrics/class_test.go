package metrics

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
)

// TestJobMetricsCarryTheClass: the jobs counter, the job duration and the
// queue wait are labelled with the job's priority class, so that an
// interactive job is told from a batch one; a job that no class consumer
// delivered counts as the default class.
func TestJobMetricsCarryTheClass(t *testing.T) {
	m := New(nil, nil, nil)
	done := func(class bus.Priority, status bus.Status, wait time.Duration) {
		res := &bus.Result{Status: status, Timings: bus.Timings{TotalMS: 200}}
		if status == bus.StatusError {
			res.Error = &bus.Error{Code: bus.CodeRateLimited}
		}
		m.JobDone(worker.JobReport{Group: "g", Class: class, Result: res, QueueWait: wait})
	}
	done(bus.PriorityInteractive, bus.StatusOK, 10*time.Millisecond)
	done(bus.PriorityBatch, bus.StatusOK, 5*time.Second)
	done(bus.PriorityBatch, bus.StatusError, 5*time.Second)
	done("", bus.StatusOK, time.Second)

	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	fams := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}
	jobs := map[string]float64{}
	for _, s := range fams["switchyard_jobs_total"].GetMetric() {
		l := labelMap(s)
		require.Equal(t, "g", l["group"])
		jobs[l["class"]+"/"+l["status"]+"/"+l["code"]] += s.GetCounter().GetValue()
	}
	require.Equal(t, map[string]float64{
		"interactive/ok/": 1, "batch/ok/": 1, "batch/error/rate_limited": 1, "default/ok/": 1,
	}, jobs)
	for _, name := range []string{"switchyard_job_duration_seconds", "switchyard_queue_wait_seconds"} {
		counts := map[string]uint64{}
		for _, s := range fams[name].GetMetric() {
			counts[labelMap(s)["class"]] += s.GetHistogram().GetSampleCount()
		}
		require.Equal(t, map[string]uint64{"interactive": 1, "batch": 2, "default": 1}, counts, name)
	}
	// The queue wait tells the classes apart: the interactive job's is in
	// the lowest buckets, the batch jobs' are not.
	for _, s := range fams["switchyard_queue_wait_seconds"].GetMetric() {
		if labelMap(s)["class"] == "interactive" {
			require.InDelta(t, 0.01, s.GetHistogram().GetSampleSum(), 1e-9)
		}
	}
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
