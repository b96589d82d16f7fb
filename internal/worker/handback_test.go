package worker_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu      sync.Mutex
	started int
	done    []worker.JobReport
	back    []string
}

func (r *recorder) JobStarted(string) { r.mu.Lock(); r.started++; r.mu.Unlock() }
func (r *recorder) JobDone(rep worker.JobReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = append(r.done, rep)
}
func (r *recorder) JobHandedBack(group string) {
	r.mu.Lock()
	r.back = append(r.back, group)
	r.mu.Unlock()
}

// A job handed back at shutdown is not a finished job: the observer is told
// it was handed back, never given a result (it used to get one with an ad
// hoc handed_back status, which metrics counted as a job of 0 s).
func TestHandedBackJobIsNotReportedDone(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 50, ChunkDelay: 100 * time.Millisecond}, noStart: true})
	rec := &recorder{}
	stop, _ := e.startWorker(worker.Config{ShutdownGrace: 100 * time.Millisecond, Observer: rec})
	ctx := ctxT(t, 30*time.Second)
	job, err := e.client.Publish(ctx, "demo", userReq("hb-1", "work"))
	require.NoError(t, err)
	ev, _, err := job.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, bus.EventStart, ev.Type)
	stop()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, 1, rec.started)
	for _, d := range rec.done {
		require.NotEqual(t, "handed_back", string(d.Result.Status), "a handed-back job is reported as done")
	}
	require.Empty(t, rec.done)
	require.Equal(t, []string{"demo"}, rec.back)
}
