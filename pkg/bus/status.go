package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// FleetStatus is a snapshot of a Switchyard deployment, read from JetStream.
type FleetStatus struct {
	Streams []StreamStatus `json:"streams"`
	Groups  []GroupStatus  `json:"groups"`
	// DLQ is the number of dead letters kept.
	DLQ uint64 `json:"dlq"`
}

// StreamStatus describes one stream.
type StreamStatus struct {
	Name      string   `json:"name"`
	Subjects  []string `json:"subjects"`
	Messages  uint64   `json:"messages"`
	Bytes     uint64   `json:"bytes"`
	Consumers int      `json:"consumers"`
	// Missing is set when the stream does not exist (no worker has
	// provisioned it yet).
	Missing bool `json:"missing,omitempty"`
}

// GroupStatus describes the queue of one model group: its durable
// consumers, one per class. The counters are the sums over the classes;
// Classes has them per class.
type GroupStatus struct {
	Group string `json:"group"`
	// Consumer is the default class's consumer (the v1 one).
	Consumer string `json:"consumer"`
	// Pending jobs are queued, not yet delivered to a worker.
	Pending uint64 `json:"pending"`
	// InFlight jobs are delivered and not yet acked (running).
	InFlight int `json:"in_flight"`
	// Redelivered jobs are in flight for the second time or more.
	Redelivered int `json:"redelivered"`
	// Waiting is the number of pull requests waiting for jobs: workers with
	// free slots (a worker has at most one per group at a time).
	Waiting int `json:"waiting"`
	// LastDelivered is when a job was last handed to a worker.
	LastDelivered *time.Time `json:"last_delivered,omitempty"`
	// DLQ is the number of this group's dead letters.
	DLQ uint64 `json:"dlq"`
	// VendorBatches is the number of the group's vendor batches in flight
	// (its vendor_batch), and VendorBatchJobs the jobs waiting for one or
	// in one.
	VendorBatches   int `json:"vendor_batches,omitempty"`
	VendorBatchJobs int `json:"vendor_batch_jobs,omitempty"`
	// Classes is the queue of each class that has a consumer, highest
	// class first.
	Classes []ClassStatus `json:"classes,omitempty"`
}

// ClassStatus is the queue of one class of a group: its consumer's
// counters (see GroupStatus).
type ClassStatus struct {
	Priority      Priority   `json:"priority"`
	Consumer      string     `json:"consumer"`
	Pending       uint64     `json:"pending"`
	InFlight      int        `json:"in_flight"`
	Redelivered   int        `json:"redelivered"`
	Waiting       int        `json:"waiting"`
	LastDelivered *time.Time `json:"last_delivered,omitempty"`
}

// Status reads the streams' sizes and each group's consumer counters: the
// request stream and object bucket of the client's tenant, and the shared
// results and dead-letter streams (an operator's view: a tenant's user is
// not allowed to read those).
func (c *Client) Status(ctx context.Context) (*FleetStatus, error) {
	st := &FleetStatus{}
	dlqBy := map[string]uint64{}
	requests, objects := c.subj.RequestStream(), "OBJ_"+c.subj.ObjectBucket()
	for _, name := range []string{requests, StreamResults, StreamDLQ, objects} {
		s, err := c.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if name != objects { // created on demand
				st.Streams = append(st.Streams, StreamStatus{Name: name, Missing: true})
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bus: stream %s: %w", name, err)
		}
		var info *jetstream.StreamInfo
		if name == StreamDLQ {
			info, err = s.Info(ctx, jetstream.WithSubjectFilter(c.subj.DLQs()))
		} else {
			info, err = s.Info(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("bus: stream %s: %w", name, err)
		}
		st.Streams = append(st.Streams, StreamStatus{
			Name: name, Subjects: info.Config.Subjects, Messages: info.State.Msgs,
			Bytes: info.State.Bytes, Consumers: info.State.Consumers,
		})
		if name == StreamDLQ {
			st.DLQ = info.State.Msgs
			prefix := strings.TrimSuffix(c.subj.DLQs(), ">")
			for subj, n := range info.State.Subjects {
				dlqBy[strings.TrimPrefix(subj, prefix)] += n
			}
		}
		if name != requests {
			continue
		}
		byGroup := map[string][]*jetstream.ConsumerInfo{}
		lister := s.ListConsumers(ctx)
		for ci := range lister.Info() {
			if g, _, ok := ParseConsumerName(ci.Name); ok {
				byGroup[g] = append(byGroup[g], ci)
			}
		}
		if err := lister.Err(); err != nil {
			return nil, fmt.Errorf("bus: consumers of %s: %w", name, err)
		}
		for g, cis := range byGroup {
			st.Groups = append(st.Groups, groupStatus(g, cis))
		}
	}
	jobs, batches, err := c.offloadStatus(ctx)
	if err != nil {
		return nil, err
	}
	for i := range st.Groups {
		g := st.Groups[i].Group
		st.Groups[i].DLQ = dlqBy[g]
		st.Groups[i].VendorBatches, st.Groups[i].VendorBatchJobs = batches[g], jobs[g]
	}
	slices.SortFunc(st.Groups, func(a, b GroupStatus) int { return strings.Compare(a.Group, b.Group) })
	return st, nil
}

// GroupStatus reads the queue of one group of the client's tenant, every
// class: nil when no worker has set up its default class's consumer. A
// group with jobs pending, no pull request waiting and none in flight is
// one no worker pulls from (a worker that served the group is gone, and
// its durable consumers stayed).
func (c *Client) GroupStatus(ctx context.Context, group string) (*GroupStatus, error) {
	var cis []*jetstream.ConsumerInfo
	for _, p := range Priorities {
		cons, err := c.js.Consumer(ctx, c.subj.RequestStream(), ConsumerNameFor(group, p))
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
			if p == PriorityDefault {
				return nil, nil
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("bus: consumer of group %s (%s): %w", group, p, err)
		}
		cis = append(cis, cons.CachedInfo())
	}
	gs := groupStatus(group, cis)
	return &gs, nil
}

// groupStatus sums the counters of a group's class consumers.
func groupStatus(group string, cis []*jetstream.ConsumerInfo) GroupStatus {
	gs := GroupStatus{Group: group, Consumer: ConsumerName(group)}
	for _, ci := range cis {
		_, p, _ := ParseConsumerName(ci.Name)
		cs := ClassStatus{
			Priority: p, Consumer: ci.Name, Pending: ci.NumPending, InFlight: ci.NumAckPending,
			Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting,
		}
		gs.Pending += cs.Pending
		gs.InFlight += cs.InFlight
		gs.Redelivered += cs.Redelivered
		gs.Waiting += cs.Waiting
		if last := ci.Delivered.Last; last != nil {
			t := *last
			cs.LastDelivered = &t
			if gs.LastDelivered == nil || t.After(*gs.LastDelivered) {
				gs.LastDelivered = &t
			}
		}
		gs.Classes = append(gs.Classes, cs)
	}
	slices.SortFunc(gs.Classes, func(a, b ClassStatus) int { return a.Priority.Rank() - b.Priority.Rank() })
	return gs
}

// Pulled reports whether some worker is pulling the group's jobs: a pull
// request is waiting, or jobs are in flight.
func (g *GroupStatus) Pulled() bool { return g.Waiting > 0 || g.InFlight > 0 }
