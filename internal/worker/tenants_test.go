package worker_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func tenantClient(t *testing.T, e *env, tenant string) *bus.Client {
	t.Helper()
	c, err := bus.NewClient(e.nc, bus.WithTenant(tenant))
	require.NoError(t, err)
	return c
}

func TestJobsRunAsTheTenantOfTheirSubject(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{noStart: true, mock: mock.Config{Tokens: 3}})
	acme := &recordingExec{Executor: e.router}
	e.startWorker(worker.Config{TenantNames: []string{"globex"}, Tenants: map[string]worker.Executor{"acme": acme}})
	ctx := ctxT(t, 20*time.Second)

	res, err := tenantClient(t, e, "acme").Submit(ctx, "demo", userReq("j-1", "hi"))
	require.NoError(t, err)
	require.Equal(t, bus.StatusOK, res.Status)
	require.EqualValues(t, 1, acme.n.Load())
	res, err = tenantClient(t, e, "globex").Submit(ctx, "demo", userReq("j-1", "hi"))
	require.NoError(t, err, "the same id in another tenant is another job")
	require.Equal(t, bus.StatusOK, res.Status)
	require.EqualValues(t, 1, acme.n.Load(), "globex's job ran on acme's keys")
	// The anonymous tenant (no unknown_tenants rule) runs on the worker's.
	_, err = e.client.Submit(ctx, "demo", userReq("j-1", "hi"))
	require.NoError(t, err)
	require.EqualValues(t, 1, acme.n.Load())

	// Results are stored per tenant, under tenant-qualified message ids.
	s, err := e.js.Stream(ctx, bus.StreamResults)
	require.NoError(t, err)
	for _, subject := range []string{"llm.t.acme.res.j-1.result", "llm.t.globex.res.j-1.result", "llm.res.j-1.result"} {
		require.Eventually(t, func() bool {
			_, err := s.GetLastMsgForSubject(ctx, subject)
			return err == nil
		}, 5*time.Second, 10*time.Millisecond, subject)
	}
	m, err := s.GetLastMsgForSubject(ctx, "llm.t.acme.res.j-1.result")
	require.NoError(t, err)
	require.Equal(t, "acme.j-1", m.Header.Get(bus.HeaderMsgID))
}

func TestAnonymousJobsRunAsTheModelFileSays(t *testing.T) {
	t.Parallel()
	t.Run("deny", func(t *testing.T) {
		t.Parallel()
		e := setup(t, opts{noStart: true, mock: mock.Config{Tokens: 3}})
		e.startWorker(worker.Config{TenantNames: []string{"acme"}, DenyAnonymous: true})
		ctx := ctxT(t, 20*time.Second)
		_, err := e.client.Submit(ctx, "demo", userReq("anon-1", "hi"))
		require.ErrorIs(t, err, &bus.Error{Code: bus.CodeAuth})
		require.Zero(t, e.mock.Calls())
		_, err = tenantClient(t, e, "acme").Submit(ctx, "demo", userReq("t-1", "hi"))
		require.NoError(t, err)
	})
	t.Run("as a tenant", func(t *testing.T) {
		t.Parallel()
		e := setup(t, opts{noStart: true, mock: mock.Config{Tokens: 3}})
		acme := &recordingExec{Executor: e.router}
		e.startWorker(worker.Config{Tenants: map[string]worker.Executor{"acme": acme}, AnonymousAs: "acme"})
		ctx := ctxT(t, 20*time.Second)
		_, err := e.client.Submit(ctx, "demo", userReq("anon-1", "hi"))
		require.NoError(t, err)
		require.EqualValues(t, 1, acme.n.Load())
		_, err = e.client.Submit(ctx, "demo", &bus.Request{ID: "anon-2", Tenant: "globex", Messages: userReq("", "x").Messages})
		require.ErrorIs(t, err, &bus.Error{Code: bus.CodeInvalidRequest}, "the client refuses a body tenant that is not its own")
	})
}

func TestCancelOfAnotherTenantsJobDoesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{noStart: true, mock: mock.Config{Tokens: 400, ChunkDelay: 5 * time.Millisecond}})
	e.startWorker(worker.Config{TenantNames: []string{"acme", "globex"}})
	ctx := ctxT(t, 30*time.Second)
	acme, globex := tenantClient(t, e, "acme"), tenantClient(t, e, "globex")
	job, err := acme.Publish(ctx, "demo", userReq("long-1", "a long one"))
	require.NoError(t, err)
	defer job.Close()
	ev, _, err := job.Next(ctx)
	require.NoError(t, err)
	require.NotNil(t, ev)
	require.NoError(t, globex.Cancel(ctx, "long-1"))
	require.NoError(t, e.client.Cancel(ctx, "long-1")) // the anonymous namespace's long-1
	_, res := collect(t, ctx, job)
	require.Equal(t, bus.StatusOK, res.Status, "another namespace's cancel stopped the job")

	// A queued job: only its own tenant's marker cancels it.
	require.NoError(t, globex.Cancel(ctx, "queued-1"))
	res, err = acme.Submit(ctx, "demo", &bus.Request{ID: "queued-1", Stream: new(bool), Messages: userReq("", "x").Messages, MaxTokens: ptr(3)})
	require.NoError(t, err)
	require.Equal(t, bus.StatusOK, res.Status)
	require.NoError(t, acme.Cancel(ctx, "queued-2"))
	_, err = acme.Submit(ctx, "demo", userReq("queued-2", "x"))
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeCancelled})
}

func TestDeadLetterCarriesTheTenant(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{noStart: true})
	e.startWorker(worker.Config{TenantNames: []string{"acme"}})
	ctx := ctxT(t, 20*time.Second)
	_, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "llm.t.acme.req.demo", Data: []byte{0xc1}, Header: nats.Header{bus.HeaderTenant: {"globex"}}})
	require.NoError(t, err)
	d, err := e.js.Stream(ctx, bus.StreamDLQ)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		m, err := d.GetLastMsgForSubject(ctx, "llm.dlq.demo")
		return err == nil && m.Header.Get(bus.HeaderTenant) == "acme"
	}, 5*time.Second, 10*time.Millisecond, "the DLQ copy names the subject's tenant, whatever the message's headers said")
}

func ptr[T any](v T) *T { return &v }
