package sched

import (
	"fmt"
	"slices"
	"sync"

	"github.com/switchyard/switchyard/pkg/bus"
)

// DefaultInteractiveShare is the share of a worker's slots kept for
// interactive jobs when Config leaves it out.
const DefaultInteractiveShare = 0.25

// Queue is one queue a worker pulls from: one tenant's jobs of one class
// (for the worker, one durable consumer on the tenant's request stream).
type Queue struct {
	Tenant string // "" for the anonymous tenant
	Class  bus.Priority
	// Name tells apart two queues of one tenant and class (a group whose
	// default class is batch has its bare subject's consumer and its batch
	// consumer); each has its turn like a tenant's. Usually "".
	Name string
}

func (q Queue) String() string {
	s := string(q.Class)
	if q.Tenant != "" {
		s = q.Tenant + "/" + s
	}
	if q.Name != "" {
		s += "(" + q.Name + ")"
	}
	return s
}

// Config sizes Slots.
type Config struct {
	// Slots is how many jobs run at once. Required, at least 1.
	Slots int
	// InteractiveShare is the share of Slots kept for interactive jobs:
	// default and batch jobs together never hold more than Slots minus
	// floor(Slots × InteractiveShare), even when no interactive job waits.
	// 0 means DefaultInteractiveShare; negative means none. At least one
	// slot is always left to the other classes.
	InteractiveShare float64
	// Queues are the queues there are, in a fixed order. Default: one
	// queue of each class for the anonymous tenant.
	Queues []Queue
}

// Slots is a worker's slots of one model group, counted by class, and the
// turn of each class's tenants. It is safe for concurrent use: the pull
// loop calls Fill and Polls, the jobs call Release.
//
// The rules:
//   - a free slot goes to the highest class that has work (interactive,
//     then default, then batch);
//   - Reserve slots are for interactive only;
//   - within a class, the free slots are split evenly between the tenants
//     that have work, and the tenant served first turns with every Fill,
//     so that a tenant's backlog delays another tenant's jobs by at most
//     one share of the slots (see docs/scheduling.md for the limits).
type Slots struct {
	total   int
	reserve int
	queues  [3][]Queue // by class rank

	mu      sync.Mutex
	used    [3]int // held slots by class rank: running jobs and pull requests
	turn    [3]int // the tenant offered slots first in each class
	polling map[Queue]bool
	changed chan struct{}
}

// New returns the slots of cfg, all free.
func New(cfg Config) (*Slots, error) {
	if cfg.Slots < 1 {
		return nil, fmt.Errorf("sched: %d slots; at least 1", cfg.Slots)
	}
	share := cfg.InteractiveShare
	switch {
	case share == 0:
		share = DefaultInteractiveShare
	case share < 0:
		share = 0
	case share >= 1:
		return nil, fmt.Errorf("sched: interactive share %v must be below 1", share)
	}
	reserve := min(int(float64(cfg.Slots)*share), cfg.Slots-1)
	s := &Slots{total: cfg.Slots, reserve: reserve, polling: map[Queue]bool{}, changed: make(chan struct{}, 1)}
	qs := cfg.Queues
	if len(qs) == 0 {
		for _, p := range bus.Priorities {
			qs = append(qs, Queue{Class: p})
		}
	}
	for _, q := range qs {
		if !bus.ValidPriority(q.Class) {
			return nil, fmt.Errorf("sched: queue %s: no such class", q)
		}
		r := q.Class.Rank()
		if slices.Contains(s.queues[r], q) {
			return nil, fmt.Errorf("sched: queue %s given twice", q)
		}
		s.queues[r] = append(s.queues[r], q)
	}
	return s, nil
}

// Reserve is how many slots are kept for interactive jobs.
func (s *Slots) Reserve() int { return s.reserve }

// Total is the number of slots.
func (s *Slots) Total() int { return s.total }

// Used returns the slots held by each class, highest first.
func (s *Slots) Used() [3]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Changed receives a value after a slot was released or a poll ended:
// the moment to Fill again. It never blocks the releaser.
func (s *Slots) Changed() <-chan struct{} { return s.changed }

func (s *Slots) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// free is how many slots class rank r may take now. Caller holds mu.
func (s *Slots) free(r int) int {
	n := s.total - s.used[0] - s.used[1] - s.used[2]
	if r > 0 {
		n = min(n, s.total-s.reserve-s.used[1]-s.used[2])
	}
	return max(n, 0)
}

// Free is how many slots class p may take now.
func (s *Slots) Free(p bus.Priority) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.free(p.Rank())
}

// take holds up to n slots for class rank r and returns how many.
func (s *Slots) take(r, n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = min(n, s.free(r))
	s.used[r] += n
	return n
}

// give returns n slots of class rank r that no job took, without waking
// the pull loop (it is the one giving them back).
func (s *Slots) give(r, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used[r] -= n
}

// Release gives back n slots of class p (a job ended, or a pull request
// brought fewer jobs than slots it held).
func (s *Slots) Release(p bus.Priority, n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	r := p.Rank()
	s.used[r] -= n
	if s.used[r] < 0 {
		s.mu.Unlock()
		panic(fmt.Sprintf("sched: %d %s slots released that were not held", -s.used[r], p))
	}
	s.mu.Unlock()
	s.signal()
}

// A Fetcher takes up to n jobs from q at once, without waiting for jobs
// that are not there yet, and returns how many it took. Each job taken
// holds one of the n slots until Release; the slots of jobs not taken are
// given back by Fill.
type Fetcher func(q Queue, n int) int

// Fill offers the free slots to the queues, highest class first and, in
// each class, split evenly between the tenants, round robin: the first
// offered is the one after the last that got a job (so a queue found
// empty does not hand its turn to its neighbour). Queues with a waiting
// pull request (Polls) are left out: what arrives goes to that request. A tenant that fills its share is offered more of what
// the others left. It returns the jobs taken and the queues found empty
// (those that gave fewer jobs than asked), which Polls may wait on.
func (s *Slots) Fill(fetch Fetcher) (taken int, empty []Queue) {
	for r := range bus.Priorities {
		all := s.queues[r]
		if len(all) == 0 {
			continue
		}
		s.mu.Lock()
		first := s.turn[r]
		s.mu.Unlock()
		active := make([]int, 0, len(all)) // indexes into all, in turn
		s.mu.Lock()
		for i := range all {
			// A queue with a waiting pull request was empty when it was
			// made, and that request gets what arrives since: when it ends
			// (PollDone) the loop fills again.
			if qi := (first + i) % len(all); !s.polling[all[qi]] {
				active = append(active, qi)
			}
		}
		s.mu.Unlock()
		last := -1 // the last queue served: the turn goes to the one after it
		for len(active) > 0 {
			more := active[:0]
			for i, qi := range active {
				s.mu.Lock()
				free := s.free(r)
				s.mu.Unlock()
				if free == 0 {
					// The class is full; the queues not asked yet are
					// not known to be empty.
					active = nil
					break
				}
				share := (free + len(active) - i - 1) / (len(active) - i)
				n := s.take(r, share)
				if n == 0 {
					continue
				}
				q := all[qi]
				got := fetch(q, n)
				if got < n {
					s.give(r, n-got)
					empty = append(empty, q)
				} else {
					more = append(more, qi)
				}
				if got > 0 {
					last = qi
				}
				taken += got
			}
			if active == nil {
				break
			}
			active = more
		}
		if last >= 0 {
			s.mu.Lock()
			s.turn[r] = (last + 1) % len(all)
			s.mu.Unlock()
		}
	}
	return taken, empty
}

// Polls holds one slot for a waiting pull request on each queue of empty
// that has none yet, highest class first, as long as its class has a free
// slot; it returns those queues. A pull request that waits holds a slot so
// that the job it brings has one; PollDone gives it back when it brought
// none (when it brought one, that job holds the slot until Release).
func (s *Slots) Polls(empty []Queue) []Queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	qs := slices.Clone(empty)
	slices.SortStableFunc(qs, func(a, b Queue) int { return a.Class.Rank() - b.Class.Rank() })
	var out []Queue
	for _, q := range qs {
		r := q.Class.Rank()
		if s.polling[q] || s.free(r) == 0 {
			continue
		}
		s.used[r]++
		s.polling[q] = true
		out = append(out, q)
	}
	return out
}

// PollDone ends q's waiting pull request; got says whether it brought a
// job, which keeps the slot.
func (s *Slots) PollDone(q Queue, got bool) {
	s.mu.Lock()
	delete(s.polling, q)
	if !got {
		s.used[q.Class.Rank()]--
	}
	s.mu.Unlock()
	s.signal()
}

// Repoll keeps q's waiting pull request going after it brought a job, when
// that job was the last one queued (the job keeps the request's slot): it
// holds another slot for the request if q's class has one free and every
// queue of a higher class has a waiting request of its own, which is what
// a Fill that found q empty and then Polls would have done, without asking
// the server. Otherwise it ends the poll as PollDone(q, true) does, and the
// next Fill decides. It returns whether q still polls.
func (s *Slots) Repoll(q Queue) bool {
	s.mu.Lock()
	r := q.Class.Rank()
	ok := s.polling[q] && s.free(r) > 0
	for hr := 0; ok && hr < r; hr++ {
		for _, hq := range s.queues[hr] {
			if !s.polling[hq] {
				ok = false
				break
			}
		}
	}
	if ok {
		s.used[r]++
		s.mu.Unlock()
		return true
	}
	delete(s.polling, q)
	s.mu.Unlock()
	s.signal()
	return false
}
