package bench

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The NATS server and clients of other tests may still be closing
		// their sockets when the last test returns.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("time.Sleep"),
	)
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	h := NewHistogram()
	require.Zero(t, h.Quantile(.99))
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	require.EqualValues(t, 1000, h.Count())
	require.InDelta(t, 500*time.Millisecond, h.Quantile(.5), float64(time.Millisecond))
	require.InDelta(t, 990*time.Millisecond, h.Quantile(.99), float64(time.Millisecond))
	require.InDelta(t, time.Second, h.Max(), float64(time.Millisecond))

	// Out-of-range values are clamped, not lost.
	h2 := NewHistogram()
	h2.Record(-time.Second)
	h2.Record(time.Hour)
	require.EqualValues(t, 2, h2.Count())
	require.InDelta(t, histMax, h2.Max(), float64(histMax)/100)
}

func TestRunClosedLoopBoundsConcurrency(t *testing.T) {
	t.Parallel()
	var inflight, peak, calls atomic.Int64
	seen := make([]atomic.Int32, 200)
	fn := func(ctx context.Context, i int) Outcome {
		calls.Add(1)
		seen[i].Add(1)
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		inflight.Add(-1)
		switch {
		case i%50 == 7:
			return Outcome{Code: "rate_limited"}
		case i%2 == 0:
			return Outcome{FirstChunk: 500 * time.Microsecond}
		}
		return Outcome{}
	}
	r, err := Run(t.Context(), "t", LoadConfig{Jobs: 200, Concurrency: 8}, fn)
	require.NoError(t, err)
	require.EqualValues(t, 200, calls.Load())
	for i := range seen {
		require.EqualValues(t, 1, seen[i].Load(), "job %d", i)
	}
	require.LessOrEqual(t, peak.Load(), int64(8))
	require.Equal(t, 200, r.Jobs)
	require.Equal(t, 196, r.OK)
	require.Equal(t, map[string]int{"rate_limited": 4}, r.Errors)
	require.Equal(t, 4, r.Failed())
	require.EqualValues(t, 100, r.FirstChunk.Count()) // the even jobs; 7+50k are odd
	require.EqualValues(t, 196, r.Completion.Count())
	require.Positive(t, r.JobsPerSec())
}

func TestRunAtFixedRate(t *testing.T) {
	t.Parallel()
	var starts []time.Time
	done := make(chan time.Time, 30)
	fn := func(ctx context.Context, i int) Outcome {
		done <- time.Now()
		return Outcome{}
	}
	t0 := time.Now()
	r, err := Run(t.Context(), "t", LoadConfig{Jobs: 30, Rate: 200}, fn)
	require.NoError(t, err)
	close(done)
	for at := range done {
		starts = append(starts, at)
	}
	require.Len(t, starts, 30)
	require.Equal(t, 30, r.OK)
	// 30 jobs at 200/s: the last starts 145ms after the first.
	require.GreaterOrEqual(t, time.Since(t0), 140*time.Millisecond)
	require.InDelta(t, 200, r.JobsPerSec(), 40)
}

func TestRunStopsAtMaxDurationAndTimesOutJobs(t *testing.T) {
	t.Parallel()
	fn := func(ctx context.Context, i int) Outcome {
		<-ctx.Done() // a job that never gets its result
		return Outcome{}
	}
	r, err := Run(t.Context(), "t", LoadConfig{Jobs: 1000, Rate: 100, JobTimeout: 50 * time.Millisecond, MaxDuration: 100 * time.Millisecond}, fn)
	require.NoError(t, err)
	require.Less(t, r.Jobs, 30)
	require.Positive(t, r.Jobs)
	require.Zero(t, r.OK)
	require.Equal(t, r.Jobs, r.Errors[CodeNoResult])
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, lc := range []LoadConfig{{}, {Jobs: 1, Rate: -1}} {
		_, err := Run(t.Context(), "t", lc, func(context.Context, int) Outcome { return Outcome{} })
		require.Error(t, err)
	}
}

func TestPrompt(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 100, 512, 5000} {
		require.Len(t, Prompt(n), n)
	}
	require.Equal(t, Prompt(512), Prompt(512))
}

func TestProcStatParsing(t *testing.T) {
	t.Parallel()
	// comm may hold spaces and parentheses; utime=250 stime=50 ticks.
	line := []byte("1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 200\n")
	cpu, err := parseStatCPU(line)
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, cpu)
	_, err = parseStatCPU([]byte("garbage"))
	require.Error(t, err)

	status := []byte("Name:\tworker\nVmPeak:\t  900 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 1000 kB\n")
	rss, err := parseStatusKB(status, "VmHWM:")
	require.NoError(t, err)
	require.EqualValues(t, 20<<20, rss)
	_, err = parseStatusKB([]byte("Name: x\n"), "VmHWM:")
	require.Error(t, err)
}

func TestProcOwnFigures(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// Burn a little CPU so that the figure is not zero.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	cpu, err := ProcCPU(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, cpu)
	rss, err := ProcPeakRSS(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, rss, int64(1<<20))
}

func TestStartProcStop(t *testing.T) {
	t.Parallel()
	p, err := StartProc("sleeper", "sleep", []string{"30"}, nil)
	require.NoError(t, err)
	require.False(t, p.Exited())
	_, err = p.CPU()
	require.NoError(t, err)
	err = p.WaitFor(t.Context(), 100*time.Millisecond, "never", func() bool { return false })
	require.ErrorContains(t, err, "no never within")
	p.Stop(5 * time.Second)
	require.True(t, p.Exited())

	q, err := StartProc("echo", "sh", []string{"-c", "echo hello; exit 3"}, nil)
	require.NoError(t, err)
	err = q.WaitFor(t.Context(), 5*time.Second, "ready", func() bool { return false })
	require.ErrorContains(t, err, "exited before ready")
	require.Contains(t, q.Output(), "hello")
}

func TestReportMerge(t *testing.T) {
	t.Parallel()
	mk := func(n int, d time.Duration, code string) *Report {
		r := NewReport("x")
		r.Jobs, r.OK, r.Elapsed = n+1, n, time.Second
		r.Errors[code] = 1
		for range n {
			r.FirstChunk.Record(d)
			r.Completion.Record(2 * d)
		}
		return r
	}
	a, b := mk(90, time.Millisecond, "timeout"), mk(10, 100*time.Millisecond, "timeout")
	a.Merge(b)
	require.Equal(t, 102, a.Jobs)
	require.Equal(t, 100, a.OK)
	require.Equal(t, map[string]int{"timeout": 2}, a.Errors)
	require.Equal(t, 2*time.Second, a.Elapsed)
	require.EqualValues(t, 100, a.FirstChunk.Count())
	require.InDelta(t, time.Millisecond, a.FirstChunk.Quantile(.5), float64(10*time.Microsecond))
	require.InDelta(t, 100*time.Millisecond, a.FirstChunk.Quantile(.99), float64(time.Millisecond))
	require.InDelta(t, 200*time.Millisecond, a.Completion.Max(), float64(time.Millisecond))
	require.EqualValues(t, 10, b.FirstChunk.Count(), "the merged report is not changed")
	a.FirstChunk.Merge(a.FirstChunk) // self-merge is a no-op, not a deadlock
	require.EqualValues(t, 100, a.FirstChunk.Count())
}
