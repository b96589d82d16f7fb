package sched_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/internal/sched"
	"github.com/switchyard/switchyard/pkg/bus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// queues is a fake set of queues: how many jobs each holds. Its fetch
// takes what is there, and records the order it was asked in.
type queues struct {
	jobs  map[sched.Queue]int
	asked []sched.Queue
	taken map[sched.Queue]int
}

func newQueues(jobs map[sched.Queue]int) *queues {
	return &queues{jobs: jobs, taken: map[sched.Queue]int{}}
}

func (q *queues) fetch(at sched.Queue, n int) int {
	q.asked = append(q.asked, at)
	got := min(n, q.jobs[at])
	q.jobs[at] -= got
	q.taken[at] += got
	return got
}

func slots(t *testing.T, cfg sched.Config) *sched.Slots {
	t.Helper()
	s, err := sched.New(cfg)
	require.NoError(t, err)
	return s
}

func tenantQueues(tenants ...string) []sched.Queue {
	var qs []sched.Queue
	for _, t := range tenants {
		for _, p := range bus.Priorities {
			qs = append(qs, qu(t, p))
		}
	}
	return qs
}

func qu(tenant string, p bus.Priority) sched.Queue { return sched.Queue{Tenant: tenant, Class: p} }

func TestReserve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		slots   int
		share   float64
		reserve int
	}{
		{slots: 128, reserve: 32},
		{slots: 8, reserve: 2},
		{slots: 3, reserve: 0},
		{slots: 1, share: 0.9, reserve: 0}, // one slot is always left to the others
		{slots: 10, share: 0.5, reserve: 5},
		{slots: 10, share: -1, reserve: 0},
	} {
		s := slots(t, sched.Config{Slots: tc.slots, InteractiveShare: tc.share})
		require.Equal(t, tc.reserve, s.Reserve(), "%d slots, share %v", tc.slots, tc.share)
	}
	_, err := sched.New(sched.Config{Slots: 0})
	require.Error(t, err)
	_, err = sched.New(sched.Config{Slots: 4, InteractiveShare: 1})
	require.Error(t, err)
}

func TestHighestClassFirst(t *testing.T) {
	t.Parallel()
	s := slots(t, sched.Config{Slots: 8})
	q := newQueues(map[sched.Queue]int{
		qu("", bus.PriorityBatch): 100, qu("", bus.PriorityDefault): 3, qu("", bus.PriorityInteractive): 2,
	})
	taken, empty := s.Fill(q.fetch)
	require.Equal(t, 8, taken)
	require.Equal(t, 2, q.taken[qu("", bus.PriorityInteractive)])
	require.Equal(t, 3, q.taken[qu("", bus.PriorityDefault)])
	require.Equal(t, 3, q.taken[qu("", bus.PriorityBatch)])
	require.Equal(t, []sched.Queue{qu("", bus.PriorityInteractive), qu("", bus.PriorityDefault), qu("", bus.PriorityBatch)}, q.asked)
	require.ElementsMatch(t, []sched.Queue{qu("", bus.PriorityInteractive), qu("", bus.PriorityDefault)}, empty)
	require.Equal(t, [3]int{2, 3, 3}, s.Used())

	// A freed slot goes to interactive once it has work again, though
	// batch has plenty.
	q.jobs[qu("", bus.PriorityInteractive)] = 1
	s.Release(bus.PriorityBatch, 1)
	taken, _ = s.Fill(q.fetch)
	require.Equal(t, 1, taken)
	require.Equal(t, 3, q.taken[qu("", bus.PriorityInteractive)])
	require.Equal(t, [3]int{3, 3, 2}, s.Used())
}

func TestInteractiveReserve(t *testing.T) {
	t.Parallel()
	s := slots(t, sched.Config{Slots: 8}) // 2 kept for interactive
	q := newQueues(map[sched.Queue]int{qu("", bus.PriorityBatch): 100, qu("", bus.PriorityDefault): 100})
	taken, empty := s.Fill(q.fetch)
	require.Equal(t, 6, taken, "batch and default leave the reserve alone")
	require.Equal(t, 6, q.taken[qu("", bus.PriorityDefault)], "default before batch")
	require.Zero(t, s.Free(bus.PriorityBatch))
	require.Equal(t, 2, s.Free(bus.PriorityInteractive))
	require.Equal(t, []sched.Queue{qu("", bus.PriorityInteractive)}, empty)

	// The reserve waits for interactive jobs with pull requests of its own.
	polls := s.Polls(empty)
	require.Equal(t, []sched.Queue{qu("", bus.PriorityInteractive)}, polls)
	require.Empty(t, s.Polls(empty), "one waiting pull request per queue")
	require.Equal(t, 1, s.Free(bus.PriorityInteractive))
	s.PollDone(polls[0], true) // it brought a job, which keeps the slot
	require.Equal(t, [3]int{1, 6, 0}, s.Used())

	q.jobs[qu("", bus.PriorityInteractive)] = 5
	taken, _ = s.Fill(q.fetch)
	require.Equal(t, 1, taken)
	require.Equal(t, [3]int{2, 6, 0}, s.Used())

	// A queue with a waiting pull request is not fetched from: that
	// request gets its jobs.
	s.Release(bus.PriorityInteractive, 1)
	require.Len(t, s.Polls([]sched.Queue{qu("", bus.PriorityInteractive)}), 1)
	q.asked = nil
	taken, _ = s.Fill(q.fetch)
	require.Zero(t, taken)
	require.Empty(t, q.asked, "interactive has a waiting pull request; default and batch hold their share")
	s.PollDone(qu("", bus.PriorityInteractive), true)

	// Interactive may use every slot; what it leaves goes to the others.
	s.Release(bus.PriorityDefault, 6)
	taken, _ = s.Fill(q.fetch)
	require.Equal(t, 6, taken)
	require.Equal(t, [3]int{6, 2, 0}, s.Used())
}

func TestReservePollsComeFirst(t *testing.T) {
	t.Parallel()
	s := slots(t, sched.Config{Slots: 2, InteractiveShare: -1, Queues: tenantQueues("a", "b")})
	empty := []sched.Queue{qu("a", bus.PriorityBatch), qu("b", bus.PriorityDefault), qu("b", bus.PriorityInteractive), qu("a", bus.PriorityInteractive)}
	require.Equal(t, []sched.Queue{qu("b", bus.PriorityInteractive), qu("a", bus.PriorityInteractive)}, s.Polls(empty))
	s.PollDone(qu("a", bus.PriorityInteractive), false)
	require.Equal(t, []sched.Queue{qu("a", bus.PriorityInteractive)}, s.Polls(empty))
}

func TestFairShareBetweenTenants(t *testing.T) {
	t.Parallel()
	s := slots(t, sched.Config{Slots: 10, InteractiveShare: -1, Queues: tenantQueues("a", "b")})
	q := newQueues(map[sched.Queue]int{qu("a", bus.PriorityDefault): 5000})
	taken, _ := s.Fill(q.fetch)
	require.Equal(t, 10, taken, "alone, a tenant gets every slot")

	// b arrives: from now on the freed slots alternate.
	q.jobs[qu("b", bus.PriorityDefault)] = 100
	for range 20 {
		s.Release(bus.PriorityDefault, 1)
		taken, _ := s.Fill(q.fetch)
		require.Equal(t, 1, taken)
	}
	require.Equal(t, 10, q.taken[qu("b", bus.PriorityDefault)])
	require.Equal(t, 20, q.taken[qu("a", bus.PriorityDefault)])

	// Many slots at once are split evenly.
	s.Release(bus.PriorityDefault, 10)
	q.taken = map[sched.Queue]int{}
	taken, _ = s.Fill(q.fetch)
	require.Equal(t, 10, taken)
	require.Equal(t, 5, q.taken[qu("a", bus.PriorityDefault)])
	require.Equal(t, 5, q.taken[qu("b", bus.PriorityDefault)])

	// What a tenant cannot use goes to the other.
	s.Release(bus.PriorityDefault, 10)
	q.taken = map[sched.Queue]int{}
	q.jobs[qu("b", bus.PriorityDefault)] = 2
	taken, empty := s.Fill(q.fetch)
	require.Equal(t, 10, taken)
	require.Equal(t, 8, q.taken[qu("a", bus.PriorityDefault)])
	require.Equal(t, 2, q.taken[qu("b", bus.PriorityDefault)])
	require.Contains(t, empty, qu("b", bus.PriorityDefault))
}

func TestRoundRobinSkipsEmptyQueues(t *testing.T) {
	t.Parallel()
	// The anonymous tenant has no work; a and b alternate all the same.
	s := slots(t, sched.Config{Slots: 1, InteractiveShare: -1, Queues: tenantQueues("", "a", "b")})
	q := newQueues(map[sched.Queue]int{qu("a", bus.PriorityBatch): 10, qu("b", bus.PriorityBatch): 10})
	var order []string
	for range 8 {
		before := map[sched.Queue]int{qu("a", bus.PriorityBatch): q.taken[qu("a", bus.PriorityBatch)]}
		taken, _ := s.Fill(q.fetch)
		require.Equal(t, 1, taken)
		if q.taken[qu("a", bus.PriorityBatch)] > before[qu("a", bus.PriorityBatch)] {
			order = append(order, "a")
		} else {
			order = append(order, "b")
		}
		s.Release(bus.PriorityBatch, 1)
		// A Fill with nothing free (a poll ended, say) does not move the turn.
		_, _ = s.Fill(func(sched.Queue, int) int { return 0 })
	}
	require.Equal(t, []string{"a", "b", "a", "b", "a", "b", "a", "b"}, order)
}

func TestTwoQueuesOfOneClass(t *testing.T) {
	t.Parallel()
	bare := sched.Queue{Class: bus.PriorityBatch, Name: "bare"}
	s := slots(t, sched.Config{Slots: 4, InteractiveShare: -1, Queues: []sched.Queue{bare, qu("", bus.PriorityBatch)}})
	q := newQueues(map[sched.Queue]int{bare: 10, qu("", bus.PriorityBatch): 10})
	taken, _ := s.Fill(q.fetch)
	require.Equal(t, 4, taken)
	require.Equal(t, 2, q.taken[bare])
	_, err := sched.New(sched.Config{Slots: 4, Queues: []sched.Queue{bare, bare}})
	require.Error(t, err)
	_, err = sched.New(sched.Config{Slots: 4, Queues: []sched.Queue{{Class: "urgent"}}})
	require.Error(t, err)
}

func TestReleaseUnheldPanics(t *testing.T) {
	t.Parallel()
	s := slots(t, sched.Config{Slots: 2})
	require.Panics(t, func() { s.Release(bus.PriorityBatch, 1) })
}

func TestChangedAfterRelease(t *testing.T) {
	t.Parallel()
	s := slots(t, sched.Config{Slots: 2})
	q := newQueues(map[sched.Queue]int{qu("", bus.PriorityInteractive): 1})
	taken, _ := s.Fill(q.fetch)
	require.Equal(t, 1, taken)
	select {
	case <-s.Changed():
		t.Fatal("changed before anything was released: a Fill that found an empty queue would wake the loop for ever")
	default:
	}
	s.Release(bus.PriorityInteractive, 1)
	s.Release(bus.PriorityInteractive, 0)
	select {
	case <-s.Changed():
	default:
		t.Fatal("no signal after a release")
	}
}

func TestRepoll(t *testing.T) {
	t.Parallel()
	s := slots(t, sched.Config{Slots: 4, InteractiveShare: -1})
	all := []sched.Queue{qu("", bus.PriorityInteractive), qu("", bus.PriorityDefault), qu("", bus.PriorityBatch)}
	require.Equal(t, all, s.Polls(all))
	require.Equal(t, [3]int{1, 1, 1}, s.Used())

	// Default's request brought the last queued job: the job keeps the
	// slot and the request waits on in another one.
	require.True(t, s.Repoll(qu("", bus.PriorityDefault)))
	require.Equal(t, [3]int{1, 2, 1}, s.Used())
	require.Empty(t, s.Polls(all), "every queue still has its request")

	// No slot left for another request: the poll ends, its job keeps the
	// slot, and the loop is woken to fill.
	require.False(t, s.Repoll(qu("", bus.PriorityBatch)))
	require.Equal(t, [3]int{1, 2, 1}, s.Used())
	select {
	case <-s.Changed():
	default:
		t.Fatal("no signal after a poll ended")
	}

	// A higher class without a request of its own comes first: the lower
	// class's request ends, so that the Fill it wakes offers the slot in
	// class order.
	s.Release(bus.PriorityDefault, 2)
	s.PollDone(qu("", bus.PriorityInteractive), false)
	require.False(t, s.Repoll(qu("", bus.PriorityDefault)), "interactive has no request")
	require.Equal(t, [3]int{0, 0, 1}, s.Used())
	require.False(t, s.Repoll(qu("", bus.PriorityBatch)), "a queue that does not poll cannot repoll")
}
