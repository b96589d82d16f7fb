package worker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// TestSweepSparesUnlistedConsumer: the unknown-group sweep must not take
// the queued jobs of a group whose consumer exists for orphans just because
// the stream's consumer list does not show that group's subject as served.
// In a cluster the list leaves out, without an error, a consumer whose
// leader did not answer in time (its node cut off, an election under way):
// the randomized chaos schedule saw two jobs of a served group answered
// unknown_group while a NATS node was cut off. A single server never leaves
// a consumer out, so the test makes the list miss the subject another way:
// the group's consumer exists with a filter the list does not match.
func TestSweepSparesUnlistedConsumer(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, bus.Provision(ctx, js, bus.StreamsConfig{}))
	subj := bus.Subjects{}
	_, err = js.CreateOrUpdateConsumer(ctx, bus.StreamRequests, jetstream.ConsumerConfig{
		Durable: bus.ConsumerName("chat"), FilterSubject: subj.Request("chat") + ".unlisted", AckPolicy: jetstream.AckExplicitPolicy,
	})
	require.NoError(t, err)
	m := nats.NewMsg(subj.Request("chat"))
	m.Header.Set(bus.HeaderMsgID, "queued-1")
	m.Data = []byte(`{"messages":[{"role":"user","content":"hi"}]}`)
	_, err = js.PublishMsg(ctx, m)
	require.NoError(t, err)

	r, err := policy.NewRouter([]policy.Group{{Name: "chat", Deployments: []policy.Deployment{{Name: "m", Model: "mock-1", Provider: mock.New(mock.Config{})}}}})
	require.NoError(t, err)
	w, err := New(nc, r, Config{Groups: []string{"chat"}, UnknownGrace: time.Millisecond})
	require.NoError(t, err)
	results, err := nc.SubscribeSync(subj.Reply("queued-1") + ".result")
	require.NoError(t, err)
	time.Sleep(10 * time.Millisecond) // past the grace
	require.NoError(t, w.sweepOnce(ctx))
	_, err = results.NextMsg(300 * time.Millisecond)
	require.ErrorIs(t, err, nats.ErrTimeout, "a job of a group whose consumer exists was answered unknown_group")
	s, err := js.Stream(ctx, bus.StreamRequests)
	require.NoError(t, err)
	st, err := s.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.State.Msgs, "the job is still queued")

	// A group with no consumer at all is still swept.
	m = nats.NewMsg(subj.Request("nosuch"))
	m.Header.Set(bus.HeaderMsgID, "orphan-1")
	m.Data = []byte(`{"messages":[{"role":"user","content":"hi"}]}`)
	orphan, err := nc.SubscribeSync(subj.Reply("orphan-1") + ".result")
	require.NoError(t, err)
	_, err = js.PublishMsg(ctx, m)
	require.NoError(t, err)
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, w.sweepOnce(ctx))
	res, err := orphan.NextMsg(5 * time.Second)
	require.NoError(t, err, "a job of a group nobody serves is answered")
	require.Contains(t, string(res.Data), string(bus.CodeUnknownGroup))
}
