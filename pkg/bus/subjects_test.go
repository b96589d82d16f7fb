package bus

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTenantSubjectsAndNames(t *testing.T) {
	t.Parallel()
	anon, acme := Subjects{}, Subjects{Tenant: "acme"}
	for _, c := range []struct{ got, want string }{
		{anon.Request("demo"), "llm.req.demo"},
		{acme.Request("demo"), "llm.t.acme.req.demo"},
		{anon.Requests(), "llm.req.>"},
		{acme.Requests(), "llm.t.acme.req.>"},
		{anon.Reply("j1"), "llm.res.j1"},
		{acme.Reply("j1"), "llm.t.acme.res.j1"},
		{acme.Results(), "llm.t.acme.res.*.result"},
		{acme.StoredEvents(), "llm.t.acme.res.*.events"},
		{anon.TenantResults(), "llm.t.*.res.*.result"},
		{anon.Cancel("j1"), "llm.cancel.j1"},
		{acme.Cancel("j1"), "llm.t.acme.cancel.j1"},
		{acme.Cancels(), "llm.t.acme.cancel.*"},
		{anon.TenantCancels(), "llm.t.*.cancel.*"},
		{acme.DLQ("demo"), "llm.dlq.demo"},
		{anon.RequestStream(), "LLM_REQUESTS"},
		{acme.RequestStream(), "LLM_REQUESTS_acme"},
		{anon.ObjectBucket(), "LLM_OBJECTS"},
		{acme.ObjectBucket(), "LLM_OBJECTS_acme"},
		{anon.CancelBucket(), "LLM_CANCEL"},
		{acme.CancelBucket(), "LLM_CANCEL_acme"},
		{anon.ResultMsgID("j1"), "j1"},
		{acme.ResultMsgID("j1"), "acme.j1"},
		{Subjects{Prefix: "x", Tenant: "b"}.Reply("1"), "x.t.b.res.1"},
		{acme.ForTenant("").Request("g"), "llm.req.g"},
	} {
		require.Equal(t, c.want, c.got)
	}
	require.True(t, acme.InResults("llm.t.acme.res.j1"))
	require.False(t, acme.InResults("llm.res.j1"), "the anonymous namespace is not acme's")
	require.False(t, anon.InResults("llm.t.acme.res.j1"))
	require.False(t, acme.InResults("llm.t.acme.res.j1.x"))
	// Result message ids of two tenants (and the anonymous one) never meet.
	require.NotEqual(t, acme.ResultMsgID("j1"), Subjects{Tenant: "globex"}.ResultMsgID("j1"))
	require.False(t, ValidJobID("acme.j1"), "anonymous ids have no dot, so no anonymous result id looks like a tenant's")
}

func TestValidTenantIsExact(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{
		"acme": true, "a": true, "0": true, "a-b_c9": true, strings.Repeat("a", 32): true,
		"": false, "Acme": false, "ACME": false, "acme ": false, " acme": false, "-acme": false, "_acme": false,
		"a.b": false, "a*": false, "a>": false, "é": false, strings.Repeat("a", 33): false, "trial\n": false,
	} {
		require.Equal(t, ok, ValidTenant(name), "%q", name)
	}
}

func TestParseRequestAndCancel(t *testing.T) {
	t.Parallel()
	s := Subjects{}
	for subject, want := range map[string]*RequestSubject{
		"llm.req.demo":                    {Group: "demo", Priority: PriorityDefault},
		"llm.t.acme.req.demo":             {Tenant: "acme", Group: "demo", Priority: PriorityDefault},
		"llm.t.acme.req.demo.x":           nil,
		"llm.req.demo.batch":              {Group: "demo", Priority: PriorityBatch},
		"llm.t.acme.req.demo.interactive": {Tenant: "acme", Group: "demo", Priority: PriorityInteractive},
		"llm.req.demo.default":            nil, // the default class is the bare subject
		"llm.req.demo.batch.x":            nil,
		"llm.req.demo.Batch":              nil,
		"llm.req.demo.":                   nil,
		"llm.req..batch":                  nil,
		"llm.t.Acme.req.demo":             nil,
		"llm.t.acme":                      nil,
		"llm.t.acme.req.":                 nil,
		"llm.t..req.demo":                 nil,
		"other.req.demo":                  nil,
		"llm.res.j1":                      nil,
		"llm.t.acme.t.x.req.demo":         nil,
		"llm.t.acme.cancel.j1":            nil,
		"llm.t.acme-2_b.req.g-1_x":        {Tenant: "acme-2_b", Group: "g-1_x", Priority: PriorityDefault},
	} {
		got, ok := s.ParseRequest(subject)
		if want == nil {
			require.False(t, ok, subject)
			continue
		}
		require.True(t, ok, subject)
		require.Equal(t, *want, got, subject)
		// What parses is what the tenant's Subjects builds.
		require.Equal(t, subject, s.ForTenant(got.Tenant).RequestFor(got.Group, got.Priority))
	}
	g, ok := Subjects{Tenant: "acme"}.GroupOf("llm.t.acme.req.demo")
	require.True(t, ok)
	require.Equal(t, "demo", g)
	g, ok = Subjects{Tenant: "acme"}.GroupOf("llm.t.acme.req.demo.batch")
	require.True(t, ok)
	require.Equal(t, "demo", g)
	_, ok = Subjects{Tenant: "acme"}.GroupOf("llm.req.demo")
	require.False(t, ok, "another tenant's subject")
	_, ok = Subjects{}.GroupOf("llm.t.acme.req.demo")
	require.False(t, ok)

	for subject, want := range map[string][2]string{
		"llm.cancel.j1":          {"", "j1"},
		"llm.t.globex.cancel.j1": {"globex", "j1"},
	} {
		tn, id, ok := s.ParseCancel(subject)
		require.True(t, ok, subject)
		require.Equal(t, want, [2]string{tn, id})
	}
	for _, subject := range []string{"llm.cancel.a b", "llm.t.Acme.cancel.j1", "llm.t.acme.cancel", "llm.req.j1", "x.cancel.j1"} {
		_, _, ok := s.ParseCancel(subject)
		require.False(t, ok, subject)
	}
}

// The prefixes the attacker used, and the ones a client may use.
func TestReplyAllowed(t *testing.T) {
	t.Parallel()
	anon, acme := Subjects{}, Subjects{Tenant: "acme"}
	for _, c := range []struct {
		s     Subjects
		reply string
		ok    bool
	}{
		{anon, "llm.res.j1", true},
		{anon, "llm.res.j1.sub", true},
		{anon, "llm.res.app.j1", true}, // two tokens: never a default reply
		{anon, "reply.app.j1", true},
		{anon, "app", true},
		{anon, "llm.res.victim", false},
		{anon, "$JS.API.STREAM.PURGE", false},
		{anon, "$JS.API", false},
		{anon, "$KV.LLM_CANCEL", false},
		{anon, "$O.LLM_OBJECTS", false},
		{anon, "$SYS.REQ", false},
		{anon, "$G", false},
		{anon, "_INBOX.abc", false},
		{anon, "_INBOX", false},
		{anon, "llm.req.demo", false},
		{anon, "llm.req", false},
		{anon, "llm.cancel", false},
		{anon, "llm.dlq.demo", false},
		{anon, "llm.t.acme.res.j1", false},
		{anon, "llm", false},
		{anon, "llm.res", false},
		{anon, "a.*", false},
		{anon, "a b", false},
		{acme, "llm.t.acme.res.j1", true},
		{acme, "llm.t.acme.res.j1.x", true},
		{acme, "llm.t.acme.res.app.j1", true},
		{acme, "llm.t.acme.res.victim", false},
		{acme, "llm.t.globex.res.j1", false},
		{acme, "llm.res.j1", false},
		{acme, "reply.app.j1", false},
		{acme, "$JS.API.STREAM.PURGE", false},
		{acme, "llm.t.acme.req.demo", false},
		{acme, "llm.t.acme.cancel", false},
	} {
		ok, why := c.s.ReplyAllowed(c.reply, "j1")
		require.Equal(t, c.ok, ok, "tenant %q reply %q: %s", c.s.Tenant, c.reply, why)
		if !ok {
			require.NotEmpty(t, why)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"llm.req.demo", "llm.t.acme.req.demo", "llm.t.x.req.", "llm.t.A.req.b"} {
		f.Add(s)
	}
	s := Subjects{}
	f.Fuzz(func(t *testing.T, subject string) {
		rs, ok := s.ParseRequest(subject)
		if !ok {
			return
		}
		if rs.Tenant != "" && !ValidTenant(rs.Tenant) || !ValidGroup(rs.Group) {
			t.Fatalf("%q parsed to invalid %+v", subject, rs)
		}
		if got := s.ForTenant(rs.Tenant).Request(rs.Group); got != subject {
			t.Fatalf("%q parsed to %+v, which builds %q", subject, rs, got)
		}
	})
}

func TestPrioritySubjectsAndConsumers(t *testing.T) {
	t.Parallel()
	acme := Subjects{Tenant: "acme"}
	require.Equal(t, "llm.t.acme.req.demo", acme.RequestFor("demo", PriorityDefault))
	require.Equal(t, "llm.t.acme.req.demo", acme.RequestFor("demo", ""), "not said: the default class")
	require.Equal(t, "llm.t.acme.req.demo.interactive", acme.RequestFor("demo", PriorityInteractive))
	require.Equal(t, "llm.req.demo.batch", Subjects{}.RequestFor("demo", PriorityBatch))

	names := map[string]bool{}
	for _, g := range []string{"demo", "demo-batch", "batch", "interactive"} {
		for _, p := range Priorities {
			name := ConsumerNameFor(g, p)
			require.False(t, names[name], "two classes or groups share %q", name)
			names[name] = true
			pg, pp, ok := ParseConsumerName(name)
			require.True(t, ok, name)
			require.Equal(t, g, pg)
			require.Equal(t, p, pp)
		}
	}
	require.Equal(t, "worker-demo", ConsumerNameFor("demo", PriorityDefault), "the v1 consumer keeps its name")
	require.Equal(t, ConsumerName("demo"), ConsumerNameFor("demo", PriorityDefault))
	for _, bad := range []string{"other", "worker-", "worker-demo@", "worker-demo@default", "worker-demo@x", "worker-Demo"} {
		_, _, ok := ParseConsumerName(bad)
		require.False(t, ok, bad)
	}
	require.Equal(t, []int{0, 1, 2}, []int{PriorityInteractive.Rank(), PriorityDefault.Rank(), PriorityBatch.Rank()})
	require.False(t, ValidPriority(""))
	require.False(t, ValidPriority("urgent"))
}
