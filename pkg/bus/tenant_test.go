package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

func TestProvisionGivesEveryTenantItsOwnStreamAndBuckets(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := ctxT(t, 10*time.Second)
	cfg := bus.StreamsConfig{Tenants: []string{"acme", "globex"}, DurableEvents: true}
	require.NoError(t, bus.Provision(ctx, js, cfg))
	require.NoError(t, bus.Provision(ctx, js, cfg), "idempotent")

	for stream, subject := range map[string]string{
		"LLM_REQUESTS": "llm.req.>", "LLM_REQUESTS_acme": "llm.t.acme.req.>", "LLM_REQUESTS_globex": "llm.t.globex.req.>",
	} {
		s, err := js.Stream(ctx, stream)
		require.NoError(t, err, stream)
		require.Equal(t, []string{subject}, s.CachedInfo().Config.Subjects)
		require.Equal(t, jetstream.WorkQueuePolicy, s.CachedInfo().Config.Retention)
	}
	res, err := js.Stream(ctx, bus.StreamResults)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"llm.res.*.result", "llm.t.*.res.*.result", "llm.res.*.events", "llm.t.*.res.*.events"}, res.CachedInfo().Config.Subjects)
	require.True(t, res.CachedInfo().Config.AllowDirect)
	for _, tn := range []string{"acme", "globex"} {
		ns := bus.Subjects{Tenant: tn}
		_, err := js.ObjectStore(ctx, ns.ObjectBucket())
		require.NoError(t, err)
		kv, err := js.KeyValue(ctx, ns.CancelBucket())
		require.NoError(t, err)
		st, err := js.Stream(ctx, "KV_"+ns.CancelBucket())
		require.NoError(t, err)
		require.EqualValues(t, 8<<20, st.CachedInfo().Config.MaxBytes, "a tenant's cancel bucket is capped")
		_ = kv
	}

	require.Error(t, bus.Provision(ctx, js, bus.StreamsConfig{Tenants: []string{"Acme"}}))

	// An older deployment's results stream gains the tenants' subjects and
	// direct get.
	srv2 := natstest.Server(t)
	js2, err := jetstream.New(natstest.Connect(t, srv2))
	require.NoError(t, err)
	_, err = js2.CreateStream(ctx, jetstream.StreamConfig{Name: bus.StreamResults, Subjects: []string{"llm.res.*.result"}})
	require.NoError(t, err)
	require.NoError(t, bus.Provision(ctx, js2, bus.StreamsConfig{}))
	res, err = js2.Stream(ctx, bus.StreamResults)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"llm.res.*.result", "llm.t.*.res.*.result"}, res.CachedInfo().Config.Subjects)
	require.True(t, res.CachedInfo().Config.AllowDirect)
}

func TestClientWithTenantPublishesInItsNamespace(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, bus.Provision(ctx, js, bus.StreamsConfig{Tenants: []string{"acme"}}))

	for _, bad := range []string{"Acme", "acme ", "a.b", "*"} {
		_, err := bus.NewClient(nc, bus.WithTenant(bad))
		require.Error(t, err, bad)
	}
	c, err := bus.NewClient(nc, bus.WithTenant("acme"))
	require.NoError(t, err)
	require.Equal(t, "acme", c.Tenant())
	job, err := c.Publish(ctx, "demo", userReq("a-1", "hi"))
	require.NoError(t, err)
	defer job.Close()
	require.Equal(t, "llm.t.acme.res.a-1", job.Reply)
	s, err := js.Stream(ctx, "LLM_REQUESTS_acme")
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(ctx, "llm.t.acme.req.demo")
	require.NoError(t, err)
	require.Equal(t, "a-1", m.Header.Get(bus.HeaderMsgID))
	require.NotEmpty(t, m.Header.Get(bus.HeaderDigest))

	// The tenant cannot name a reply outside its namespace.
	_, err = c.Publish(ctx, "demo", &bus.Request{ID: "a-3", Reply: "llm.res.victim", Messages: userReq("", "x").Messages})
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeInvalidRequest})

	// A tenant with no stream cannot queue anything: the server refuses.
	other, err := bus.NewClient(nc, bus.WithTenant("initech"))
	require.NoError(t, err)
	_, err = other.Publish(ctx, "demo", userReq("i-1", "hi"))
	require.ErrorIs(t, err, jetstream.ErrNoStreamResponse)
	require.ErrorContains(t, err, "LLM_REQUESTS_initech")

	// WithTenant wins over WithSubjects, whatever the order.
	c2, err := bus.NewClient(nc, bus.WithTenant("acme"), bus.WithSubjects(bus.Subjects{Prefix: "llm"}))
	require.NoError(t, err)
	require.Equal(t, "llm.t.acme.req.demo", c2.Subjects().Request("demo"))
}

func TestJobDropsResultsAndEventsOfOtherJobs(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, bus.Provision(ctx, js, bus.StreamsConfig{}))
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	job, err := c.Publish(ctx, "demo", userReq("mine", "hi"))
	require.NoError(t, err)
	defer job.Close()

	pub := func(subject string, v any) {
		data, err := bus.Msgpack.Marshal(v)
		require.NoError(t, err)
		require.NoError(t, nc.Publish(subject, data))
	}
	pub(bus.EventsSubject(job.Reply), &bus.Event{ID: "attacker", Type: bus.EventChunk, Seq: 1, Delta: "forged"})
	pub(bus.ResultSubject(job.Reply), &bus.Result{ID: "attacker", Status: bus.StatusOK, Text: "forged"})
	pub(bus.EventsSubject(job.Reply), &bus.Event{ID: "mine", Type: bus.EventChunk, Seq: 1, Delta: "real"})
	pub(bus.ResultSubject(job.Reply), &bus.Result{ID: "mine", Status: bus.StatusOK, Text: "real"})
	ev, res, err := job.Next(ctx)
	require.NoError(t, err)
	require.Nil(t, res)
	require.Equal(t, "real", ev.Delta)
	_, res, err = job.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "real", res.Text)
	require.EqualValues(t, 2, job.Dropped())
	require.EqualValues(t, 2, c.Dropped())
}

func TestSubmitOfATakenIDFailsClearly(t *testing.T) {
	t.Parallel()
	f := startFleet(t, fleetOpts{})
	ctx := ctxT(t, 20*time.Second)

	// Re-submitting the same request returns its first result.
	first, err := f.client.Submit(ctx, "demo", userReq("same-1", "hello"))
	require.NoError(t, err)
	again, err := f.client.Submit(ctx, "demo", userReq("same-1", "hello"))
	require.NoError(t, err)
	require.Equal(t, first.Text, again.Text)

	// Someone else publishes first with the id this client will use.
	squat := nats.NewMsg("llm.req.demo")
	squat.Header.Set(bus.HeaderMsgID, "victim-1")
	squat.Data = []byte(`{"messages":[{"role":"user","content":"the squatter's prompt"}]}`)
	js, err := jetstream.New(f.nc)
	require.NoError(t, err)
	_, err = js.PublishMsg(ctx, squat)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := f.client.StoredResult(ctx, "llm.res.victim-1")
		return err == nil && r != nil
	}, 10*time.Second, 20*time.Millisecond)
	res, err := f.client.Submit(ctx, "demo", userReq("victim-1", "the victim's prompt"))
	require.ErrorIs(t, err, bus.ErrIDTaken)
	require.Nil(t, res, "never the squatter's result")

	// Same when Submit comes before the squatter's result is stored: it is
	// caught on the live result.
	squat.Subject, squat.Header = "llm.req.demo", nats.Header{bus.HeaderMsgID: {"victim-2"}}
	squat.Data = []byte(`{"messages":[{"role":"user","content":"the squatter's prompt"}],"timeout_ms":60000}`)
	_, err = js.PublishMsg(ctx, squat)
	require.NoError(t, err)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err = f.client.Submit(sctx, "demo", userReq("victim-2", "the victim's prompt"))
	require.True(t, errors.Is(err, bus.ErrIDTaken), "got %v", err)
	require.Nil(t, res)
}
