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

// GroupStatus describes the queue of one model group: its durable consumer.
type GroupStatus struct {
	Group    string `json:"group"`
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
		lister := s.ListConsumers(ctx)
		for ci := range lister.Info() {
			g, ok := strings.CutPrefix(ci.Name, ConsumerName(""))
			if !ok {
				continue
			}
			st.Groups = append(st.Groups, groupStatus(g, ci))
		}
		if err := lister.Err(); err != nil {
			return nil, fmt.Errorf("bus: consumers of %s: %w", name, err)
		}
	}
	for i := range st.Groups {
		st.Groups[i].DLQ = dlqBy[st.Groups[i].Group]
	}
	slices.SortFunc(st.Groups, func(a, b GroupStatus) int { return strings.Compare(a.Group, b.Group) })
	return st, nil
}

// GroupStatus reads the queue of one group of the client's tenant: nil when
// no worker has set up its consumer. A consumer with jobs pending, no pull
// request waiting and none in flight is one no worker pulls from (a worker
// that served the group is gone, and its durable consumer stayed).
func (c *Client) GroupStatus(ctx context.Context, group string) (*GroupStatus, error) {
	cons, err := c.js.Consumer(ctx, c.subj.RequestStream(), ConsumerName(group))
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("bus: consumer of group %s: %w", group, err)
	}
	gs := groupStatus(group, cons.CachedInfo())
	return &gs, nil
}

func groupStatus(group string, ci *jetstream.ConsumerInfo) GroupStatus {
	gs := GroupStatus{
		Group: group, Consumer: ci.Name, Pending: ci.NumPending, InFlight: ci.NumAckPending,
		Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting,
	}
	if ci.Delivered.Last != nil {
		t := *ci.Delivered.Last
		gs.LastDelivered = &t
	}
	return gs
}

// Pulled reports whether some worker is pulling the group's jobs: a pull
// request is waiting, or jobs are in flight.
func (g *GroupStatus) Pulled() bool { return g.Waiting > 0 || g.InFlight > 0 }
