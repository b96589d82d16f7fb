package main

// Each test here is one attack of issue #12, tried by tenant globex (the
// attacker) against tenant acme (the victim) on the example's real server,
// with its authentication and permissions in force, and one worker serving
// the example's model file.

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

// A job that names another job's reply prefix gets invalid_request on its
// own default reply; the victim's subjects and stored result are untouched
// and the victim's Submit returns its own result.
func TestForgedReplyIsRefused(t *testing.T) {
	f := startFleet(t)
	ctx := ctxT(t, 30*time.Second)
	acme, globex := f.connect("acme"), f.connect("globex")
	victim := results(t, acme.nc, "llm.t.acme.res")
	attacker := results(t, globex.nc, "llm.t.globex.res")

	for i, reply := range []string{"llm.t.acme.res.victim-1", "llm.res.victim-1", "llm.t.globex.res.victim-1"} {
		id := fmt.Sprintf("forge-%d", i)
		_, err := raw(t, ctx, globex, "llm.t.globex.req.demo", nats.Header{bus.HeaderMsgID: {id}, bus.HeaderReply: {reply}}, prompt(id, "forged answer"), bus.JSON)
		require.NoError(t, err)
		r := waitResult(t, attacker, "llm.t.globex.res."+id+".result")
		require.Equal(t, bus.StatusError, r.Status, reply)
		require.Equal(t, bus.CodeInvalidRequest, r.Error.Code, reply)
		require.Contains(t, r.Error.Message, reply)
	}
	// The body's reply field is the same request as the header.
	_, err := raw(t, ctx, globex, "llm.t.globex.req.demo", nats.Header{bus.HeaderMsgID: {"forge-body"}}, &bus.Request{Reply: "llm.t.acme.res.victim-1", Messages: prompt("", "x").Messages}, bus.Msgpack)
	require.NoError(t, err)
	require.Equal(t, bus.CodeInvalidRequest, waitResult(t, attacker, "llm.t.globex.res.forge-body.result").Error.Code)

	// The attacker may not even publish there, or use the v1 subjects.
	require.NoError(t, globex.nc.Publish("llm.t.acme.res.victim-1.result", []byte(`{"id":"victim-1","status":"ok","text":"forged"}`)))
	_, err = raw(t, ctxT(t, 2*time.Second), globex, "llm.req.demo", nats.Header{bus.HeaderMsgID: {"v1"}}, prompt("v1", "x"), bus.JSON)
	require.Error(t, err)
	require.Eventually(t, func() bool { return len(globex.perm.list()) >= 2 }, 5*time.Second, 10*time.Millisecond)

	stored, err := acme.c.StoredResult(ctx, acme.c.Subjects().Reply("victim-1"))
	require.NoError(t, err)
	require.Nil(t, stored, "nothing was stored as the victim's result")
	require.Empty(t, victim(), "nothing reached the victim's subjects")

	res, err := acme.c.Submit(ctx, "demo", prompt("victim-1", "the victim's question"))
	require.NoError(t, err)
	require.Equal(t, "victim-1", res.ID)
	require.Equal(t, res.Text, storedResult(t, ctx, acme.c, "victim-1").Text)
	// The test's own subscription is another one than Submit's: it may get
	// the same live result a moment later.
	require.Eventually(t, func() bool { return len(victim()["llm.t.acme.res.victim-1.result"]) >= 1 }, 5*time.Second, 10*time.Millisecond)
	require.Len(t, victim()["llm.t.acme.res.victim-1.result"], 1)
	require.Zero(t, acme.c.Dropped())
}

// Reply prefixes naming the server's API, Switchyard's own subjects or the
// request-reply inboxes are refused: nothing is published there (the purge
// target keeps its messages) and each job gets exactly one result.
func TestRepliesIntoServerAndSwitchyardSubjectsAreRefused(t *testing.T) {
	f := startFleet(t)
	ctx := ctxT(t, 30*time.Second)
	globex, op := f.connect("globex"), f.connect("operator")
	// Two unrelated streams, the targets of "$JS.API.STREAM.PURGE" + .events / .result.
	for _, name := range []string{"events", "result"} {
		_, err := op.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"app." + name}})
		require.NoError(t, err)
		_, err = op.js.Publish(ctx, "app."+name, []byte("keep me"))
		require.NoError(t, err)
	}
	// Everything the worker might publish into on the attacker's behalf.
	var seen []string
	watch := []string{"$JS.API.STREAM.PURGE.>", "$KV.>", "$O.>", "llm.req.>", "llm.t.*.req.>", "llm.dlq.>", "llm.cancel.>", "llm.t.*.cancel.>", "_INBOX.acme.>", "llm.t.acme.>", "$SYS.>"}
	msgs := make(chan string, 1024)
	for _, s := range watch {
		sub, err := op.nc.Subscribe(s, func(m *nats.Msg) {
			if strings.HasSuffix(m.Subject, ".events") || strings.HasSuffix(m.Subject, ".result") {
				msgs <- m.Subject
			}
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	require.NoError(t, op.nc.Flush())
	attacker := results(t, globex.nc, "llm.t.globex.res")

	replies := []string{
		"$JS.API.STREAM.PURGE", "$KV.LLM_CANCEL_acme", "$KV.LLM_CANCEL", "$O.LLM_OBJECTS_acme", "$SYS.REQ.SERVER",
		"llm.t.acme.req", "llm.t.globex.req", "llm.req", "llm.dlq", "llm.t.acme.cancel", "llm.t.globex.cancel",
		"llm.cancel", "_INBOX.acme", "llm.t.acme.res.x", "llm",
	}
	for i, reply := range replies {
		id := fmt.Sprintf("aim-%d", i)
		_, err := raw(t, ctx, globex, "llm.t.globex.req.demo", nats.Header{bus.HeaderMsgID: {id}, bus.HeaderReply: {reply}}, prompt(id, "hi"), bus.Msgpack)
		require.NoError(t, err)
	}
	for i, reply := range replies {
		r := waitResult(t, attacker, fmt.Sprintf("llm.t.globex.res.aim-%d.result", i))
		require.Equal(t, bus.CodeInvalidRequest, r.Error.Code, reply)
	}
	// Let anything late arrive, then count.
	require.NoError(t, globex.nc.Flush())
	time.Sleep(200 * time.Millisecond) // nothing to wait for: asserting an absence
	close(msgs)
	for s := range msgs {
		seen = append(seen, s)
	}
	require.Empty(t, seen, "the worker published into reserved subjects")
	for _, name := range []string{"events", "result"} {
		s, err := op.js.Stream(ctx, name)
		require.NoError(t, err)
		require.EqualValues(t, 1, s.CachedInfo().State.Msgs, "stream %s was purged", name)
	}
	for subject, rs := range attacker() {
		require.Len(t, rs, 1, "one result per job: %s", subject)
	}
	require.Len(t, attacker(), len(replies))
}

// A tenant can neither read nor delete another tenant's large request, not
// directly and not through a job that names it.
func TestLargeRequestObjectsStayWithTheirTenant(t *testing.T) {
	f := startFleet(t)
	ctx := ctxT(t, 60*time.Second)
	acme, globex, op := f.connect("acme"), f.connect("globex"), f.connect("operator")

	// The victim's pending large request.
	body, err := bus.Msgpack.Marshal(prompt("victim-obj", "the victim's secret prompt "+strings.Repeat("x", 2<<20)))
	require.NoError(t, err)
	obs, err := acme.js.ObjectStore(ctx, "LLM_OBJECTS_acme")
	require.NoError(t, err)
	_, err = obs.PutBytes(ctx, "victim-obj", body)
	require.NoError(t, err)

	// Directly: every way in is refused by the server.
	short := ctxT(t, 2*time.Second)
	_, err = globex.js.ObjectStore(short, "LLM_OBJECTS_acme")
	require.Error(t, err)
	_, err = globex.nc.Request("$JS.API.DIRECT.GET.OBJ_LLM_OBJECTS_acme.$O.LLM_OBJECTS_acme.M.dmljdGltLW9iag==", nil, time.Second)
	require.Error(t, err)
	_, err = globex.nc.Request("$JS.API.STREAM.PURGE.OBJ_LLM_OBJECTS_acme", nil, time.Second)
	require.Error(t, err)
	_, err = globex.nc.Request("$JS.API.STREAM.PURGE.OBJ_LLM_OBJECTS", nil, time.Second)
	require.Error(t, err)

	// Through a job: the worker looks only in the job's tenant's bucket.
	attacker := results(t, globex.nc, "llm.t.globex.res")
	_, err = raw(t, ctx, globex, "llm.t.globex.req.demo", nats.Header{bus.HeaderMsgID: {"victim-obj"}, bus.HeaderObject: {"victim-obj"}}, &bus.Request{ID: "victim-obj"}, bus.Msgpack)
	require.NoError(t, err)
	r := waitResult(t, attacker, "llm.t.globex.res.victim-obj.result")
	require.Equal(t, bus.StatusError, r.Status)
	require.Equal(t, bus.CodeInvalidRequest, r.Error.Code)
	require.NotContains(t, r.Text, "secret")

	// Inside one tenant a job may read only the object named after itself.
	own := results(t, acme.nc, "llm.t.acme.res")
	_, err = raw(t, ctx, acme, "llm.t.acme.req.demo", nats.Header{bus.HeaderMsgID: {"other-job"}, bus.HeaderObject: {"victim-obj"}}, &bus.Request{ID: "other-job"}, bus.Msgpack)
	require.NoError(t, err)
	r = waitResult(t, own, "llm.t.acme.res.other-job.result")
	require.Equal(t, bus.CodeInvalidRequest, r.Error.Code)

	// (A tenant may store objects, not read them back: look as an operator.)
	opObs, err := op.js.ObjectStore(ctx, "LLM_OBJECTS_acme")
	require.NoError(t, err)
	got, err := opObs.GetBytes(ctx, "victim-obj")
	require.NoError(t, err, "the victim's object is still there")
	require.Equal(t, body, got)

	// The victim's own large job runs, and its object is deleted after.
	res, err := acme.c.Submit(ctx, "demo", prompt("big-1", "big "+strings.Repeat("y", 2<<20)))
	require.NoError(t, err)
	require.Equal(t, bus.StatusOK, res.Status)
	require.Eventually(t, func() bool {
		_, err := opObs.GetInfo(ctx, "big-1")
		return err != nil
	}, 10*time.Second, 20*time.Millisecond)

	// A large result travels through the tenant's bucket too: the worker
	// stores it there, the tenant reads it (globex: acme's token budget is
	// spent by the large prompts above).
	var schema any
	require.NoError(t, json.Unmarshal([]byte(`{"type":"object","properties":{"s":{"type":"string","minLength":1500000}},"required":["s"]}`), &schema))
	no := false
	res, err = globex.c.Submit(ctx, "demo", &bus.Request{
		ID: "big-result", Stream: &no, Messages: prompt("", "a long one").Messages,
		ResponseFormat: &bus.ResponseFormat{Type: "json_schema", JSONSchema: &bus.JSONSchema{Name: "long", Schema: schema}},
	})
	require.NoError(t, err, "a tenant's large result (violations: %v)", globex.perm.list())
	require.Greater(t, len(res.Text), 1_500_000)
	require.Empty(t, acme.perm.list())
}

// The tenant is the subject's, never the body's: a body naming another
// tenant is invalid_request, and every job runs with its own tenant's key.
func TestTenantIsWhoTheConnectionIs(t *testing.T) {
	f := startFleet(t)
	ctx := ctxT(t, 30*time.Second)
	acme, globex := f.connect("acme"), f.connect("globex")
	attacker := results(t, globex.nc, "llm.t.globex.res")

	_, err := raw(t, ctx, globex, "llm.t.globex.req.chat", nats.Header{bus.HeaderMsgID: {"spoof-1"}}, &bus.Request{Tenant: "acme", Messages: prompt("", "spoofed as acme").Messages}, bus.JSON)
	require.NoError(t, err)
	r := waitResult(t, attacker, "llm.t.globex.res.spoof-1.result")
	require.Equal(t, bus.CodeInvalidRequest, r.Error.Code)

	res, err := globex.c.Submit(ctx, "chat", prompt("g-1", "globex asks"))
	require.NoError(t, err)
	require.Equal(t, "echo: globex asks", res.Text)
	res, err = acme.c.Submit(ctx, "chat", prompt("a-1", "acme asks"))
	require.NoError(t, err)
	require.Equal(t, "echo: acme asks", res.Text)
	// A body naming its own tenant is fine.
	res, err = acme.c.Submit(ctx, "chat", &bus.Request{ID: "a-2", Tenant: "acme", Messages: prompt("", "acme again").Messages})
	require.NoError(t, err)
	require.Equal(t, bus.StatusOK, res.Status)

	require.Equal(t, []string{"acme asks", "acme again"}, f.p.prompts(acmeKey))
	require.Equal(t, []string{"globex asks"}, f.p.prompts(globexKey))
	require.Empty(t, f.p.prompts(fleetKey), "no tenant's job used the fleet's key")
}

// A spent budget stops the tenant's jobs however its name is spelled.
func TestBudgetCannotBeDodged(t *testing.T) {
	f := startFleet(t)
	ctx := ctxT(t, 30*time.Second)
	acme := f.connect("acme")
	f.p.setUsage(150_000) // two calls spend acme's 200k tokens
	for i := range 2 {
		_, err := acme.c.Submit(ctx, "chat", prompt(fmt.Sprintf("b-%d", i), "spend"))
		require.NoError(t, err)
	}
	_, err := acme.c.Submit(ctx, "chat", prompt("b-2", "over budget"))
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeBudgetExceeded})

	own := results(t, acme.nc, "llm.t.acme.res")
	for i, tenant := range []string{"Acme", "acme ", "ACME", "trial", "trial ", "globex"} {
		id := fmt.Sprintf("dodge-%d", i)
		_, err := raw(t, ctx, acme, "llm.t.acme.req.chat", nats.Header{bus.HeaderMsgID: {id}}, &bus.Request{Tenant: tenant, Messages: prompt("", "dodge").Messages}, bus.JSON)
		require.NoError(t, err)
		r := waitResult(t, own, "llm.t.acme.res."+id+".result")
		require.Equal(t, bus.StatusError, r.Status, tenant)
		require.Contains(t, []bus.ErrorCode{bus.CodeInvalidRequest, bus.CodeBudgetExceeded}, r.Error.Code, tenant)
	}
	_, err = raw(t, ctx, acme, "llm.t.acme.req.chat", nats.Header{bus.HeaderMsgID: {"dodge-none"}}, prompt("", "no tenant"), bus.JSON)
	require.NoError(t, err)
	require.Equal(t, bus.CodeBudgetExceeded, waitResult(t, own, "llm.t.acme.res.dodge-none.result").Error.Code)
	// Other spellings of the tenant token are not acme's subjects at all.
	for _, subject := range []string{"llm.t.Acme.req.chat", "llm.t.trial.req.chat", "llm.req.chat"} {
		_, err := raw(t, ctxT(t, 2*time.Second), acme, subject, nil, prompt("x", "dodge"), bus.JSON)
		require.Error(t, err, subject)
	}
	require.Len(t, f.p.prompts(acmeKey), 2, "no call after the budget was spent")
	require.Empty(t, f.p.prompts(fleetKey))
}

// A cancel reaches only its own tenant's job, running or queued.
func TestCancelReachesOnlyItsTenant(t *testing.T) {
	f := startFleet(t)
	ctx := ctxT(t, 30*time.Second)
	acme, globex := f.connect("acme"), f.connect("globex")

	job, err := acme.c.Publish(ctx, "chat", prompt("c-1", "hold:c1 on"))
	require.NoError(t, err)
	defer job.Close()
	f.p.waitHeld(t, "c1")
	// globex's cancels of the same id, in its own namespace, and a marker
	// for acme's next job id.
	require.NoError(t, globex.c.Cancel(ctx, "c-1"))
	require.NoError(t, globex.c.Cancel(ctx, "c-2"))
	// acme's namespace is closed to globex.
	require.NoError(t, globex.nc.Publish("llm.t.acme.cancel.c-1", nil))
	require.NoError(t, globex.nc.Publish("llm.cancel.c-1", nil))
	_, err = globex.nc.Request("$KV.LLM_CANCEL_acme.c-2", []byte("x"), time.Second)
	require.Error(t, err)
	require.NoError(t, globex.nc.Flush())
	require.Eventually(t, func() bool { return len(globex.perm.list()) >= 3 }, 5*time.Second, 10*time.Millisecond)
	f.p.release("c1")
	var res *bus.Result
	for res == nil {
		_, res, err = job.Next(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, bus.StatusOK, res.Status, "globex's cancel stopped acme's job: %+v", res.Error)
	res, err = acme.c.Submit(ctx, "chat", prompt("c-2", "next"))
	require.NoError(t, err, "globex's marker cancelled acme's queued job")

	// acme's own cancel works.
	job, err = acme.c.Publish(ctx, "chat", prompt("c-3", "hold:c3 again"))
	require.NoError(t, err)
	defer job.Close()
	f.p.waitHeld(t, "c3")
	// The worker confirms it (nats.conf: the worker's allow_responses).
	running, err := acme.c.CancelConfirmed(ctx, "c-3", 10*time.Second)
	require.NoError(t, err)
	require.True(t, running, "the worker running c-3 did not confirm its cancel")
	res = nil
	for res == nil {
		_, res, err = job.Next(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, bus.CodeCancelled, res.Error.Code)
}

// A job id taken first by another tenant is not taken for acme: each
// tenant's request stream has its own dedupe window.
func TestIDSquattingAcrossTenants(t *testing.T) {
	f := startFleet(t)
	ctx := ctxT(t, 30*time.Second)
	acme, globex := f.connect("acme"), f.connect("globex")
	res, err := globex.c.Submit(ctx, "chat", prompt("sq-1", "the squatter's prompt"))
	require.NoError(t, err)
	require.Equal(t, "echo: the squatter's prompt", res.Text)

	job, err := acme.c.Publish(ctx, "chat", prompt("sq-1", "the victim's prompt"))
	require.NoError(t, err)
	require.False(t, job.Duplicate)
	job.Close()
	res, err = acme.c.Submit(ctx, "chat", prompt("sq-1", "the victim's prompt"))
	require.NoError(t, err)
	require.Equal(t, "echo: the victim's prompt", res.Text)
	require.Equal(t, "echo: the squatter's prompt", storedResult(t, ctx, globex.c, "sq-1").Text, "results of equal ids of two tenants do not dedupe")
	require.Equal(t, "echo: the victim's prompt", storedResult(t, ctx, acme.c, "sq-1").Text)
}

// An invalid Nats-Msg-Id is answered invalid_request, where its client can
// find it: under its default reply when the id makes a subject, else under
// the reply of seq-<the PubAck's sequence>.
func TestInvalidMessageIDsAreAnswered(t *testing.T) {
	f := startFleet(t)
	ctx := ctxT(t, 30*time.Second)
	acme := f.connect("acme")
	own := results(t, acme.nc, "llm.t.acme.res")
	for _, id := range []string{"a b", "a.b.x", "*", ">", strings.Repeat("x", 10_000), "é"} {
		ack, err := raw(t, ctx, acme, "llm.t.acme.req.demo", nats.Header{bus.HeaderMsgID: {id}}, prompt("", "hi"), bus.JSON)
		require.NoError(t, err)
		subject := fmt.Sprintf("llm.t.acme.res.seq-%d.result", ack.Sequence)
		if id == "a.b.x" {
			subject = "llm.t.acme.res.a.b.x.result"
		}
		r := waitResult(t, own, subject)
		require.Equal(t, bus.StatusError, r.Status, "id %.20q", id)
		require.Equal(t, bus.CodeInvalidRequest, r.Error.Code)
		require.Contains(t, r.Error.Message, bus.JobIDRule)
	}
}

// A flood of cancels for ids that do not exist does not grow the worker,
// and leaves other tenants' cancels working.
func TestCancelFloodIsBounded(t *testing.T) {
	f := startFleet(t)
	ctx := ctxT(t, 120*time.Second)
	acme, globex := f.connect("acme"), f.connect("globex")
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	// globex's own running job: its cancel, sent on the same connection
	// after the flood, reaches the worker after the whole flood.
	gjob, err := globex.c.Publish(ctx, "chat", prompt("barrier", "hold:barrier"))
	require.NoError(t, err)
	defer gjob.Close()
	f.p.waitHeld(t, "barrier")
	// A queued job's marker that the flood pushes out of the worker's memo:
	// the worker then looks it up in globex's bucket.
	require.NoError(t, globex.c.Cancel(ctx, "g-queued"))
	before := heap()
	const n = 300_000
	for i := range n {
		require.NoError(t, globex.nc.Publish("llm.t.globex.cancel."+uuid.NewString(), nil))
		if i%10_000 == 0 {
			require.NoError(t, globex.nc.Flush())
		}
	}
	require.NoError(t, globex.c.Cancel(ctx, "barrier"))
	var res *bus.Result
	for res == nil {
		_, res, err = gjob.Next(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, bus.CodeCancelled, res.Error.Code)
	grew := heap() - before
	t.Logf("heap grew by %.1f MiB after %d cancels", float64(grew)/(1<<20), n)
	// Unbounded, each cancel held ~140 bytes: 300k would be ~40 MiB.
	require.Less(t, grew, int64(25<<20))
	_, err = globex.c.Submit(ctx, "chat", prompt("g-queued", "never runs"))
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeCancelled}, "a marker pushed out of the memo was missed")

	// acme's cancels still work, of running and of queued jobs.
	job, err := acme.c.Publish(ctx, "chat", prompt("a-run", "hold:arun"))
	require.NoError(t, err)
	defer job.Close()
	f.p.waitHeld(t, "arun")
	require.NoError(t, acme.c.Cancel(ctx, "a-run"))
	res = nil
	for res == nil {
		_, res, err = job.Next(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, bus.CodeCancelled, res.Error.Code)
	require.NoError(t, acme.c.Cancel(ctx, "a-queued"))
	_, err = acme.c.Submit(ctx, "chat", prompt("a-queued", "never runs"))
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeCancelled})
}
