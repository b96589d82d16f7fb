package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

// FuzzIntake feeds intake arbitrary messages, with no server: it must never
// panic, and whatever the body says it holds the rules identify promises.
// The seeds cover the ways in: JSON and msgpack bodies, tenant subjects, the
// id in the header or the body, a requested reply, a large-body reference.
func FuzzIntake(f *testing.F) {
	ok := `{"messages":[{"role":"user","content":"hi"}]}`
	mp, err := bus.Msgpack.Marshal(&bus.Request{ID: "m1", Messages: []bus.Message{{Role: "user", Content: bus.Content{Text: "hi"}}}})
	require.NoError(f, err)
	seeds := []struct {
		subject, msgID, reply, object string
		body                          []byte
		delivery                      int
	}{
		{"llm.req.chat", "j1", "", "", []byte(ok), 1},
		{"llm.t.acme.req.chat", "j2", "", "", []byte(ok), 2},
		{"llm.t.acme.req.chat", "", "", "", []byte(`{"id":"b1","tenant":"other","messages":[{"role":"user","content":"x"}]}`), 1},
		{"llm.req.chat", "bad id!", "", "", []byte(ok), 1},
		{"llm.req.chat", "", "_INBOX.x", "", []byte(`{"id":"r1","reply":"llm.res.other","messages":[{"role":"user","content":"x"}]}`), 1},
		{"llm.req.chat", "j3", "", "req.j3", []byte(ok), 1},
		{"llm.req.chat", "j4", "", "", mp, 1},
		{"llm.req.Bad.Group", "j5", "", "", []byte(`{`), 5},
		{"llm.req.chat", "j6", "", "", []byte(`{"messages":[{"role":"tool","content":"x"}],"timeout_ms":-1,"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"nope"}}}}`), 1},
	}
	for _, s := range seeds {
		f.Add(s.subject, s.msgID, s.reply, s.object, s.body, s.delivery)
	}
	published := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, subject, msgID, reply, object string, body []byte, delivery int) {
		for _, r := range []rules{
			{maxDeliver: 5, validationRetries: 2},
			{maxDeliver: 5, anonymousAs: "acme"},
			{maxDeliver: 5, denyAnonymous: true},
		} {
			h := nats.Header{}
			for k, v := range map[string]string{bus.HeaderMsgID: msgID, bus.HeaderReply: reply, bus.HeaderObject: object} {
				if v != "" && !strings.ContainsAny(v, "\r\n") {
					h.Set(k, v)
				}
			}
			ns := r.subjects.ForTenant("")
			tk := r.decode(inbound{ns: ns, subject: subject, header: h, data: body, seq: 42})

			// The tenant is the subject's, never the body's.
			want := ns
			if rs, ok := r.subjects.ParseRequest(subject); ok {
				want = r.subjects.ForTenant(rs.Tenant)
			}
			require.Equal(t, want, tk.subj)
			if tk.subj.Tenant != "" {
				require.Equal(t, tk.subj.Tenant, tk.tenant)
			} else {
				require.Equal(t, r.anonymousAs, tk.tenant)
			}
			// Every job has an id to answer under, and a reply in its
			// tenant's namespace.
			require.True(t, bus.ValidJobID(tk.id), "id %q", tk.id)
			require.True(t, bus.ValidReply(tk.reply), "reply %q", tk.reply)
			allowed, why := tk.subj.ReplyAllowed(tk.reply, tk.id)
			require.True(t, allowed, "reply %q: %s", tk.reply, why)

			call, rej := r.check(&tk, "chat", delivery, published)
			require.True(t, (call == nil) != (rej == nil), "a call or a rejection, never both")
			switch {
			case rej != nil:
				require.NotEmpty(t, rej.code)
				require.NotEmpty(t, rej.msg)
				require.Equal(t, rej.dlq, tk.decodeErr != nil || delivery >= r.maxDeliver, "only undecodable and exhausted jobs go to the DLQ")
			default:
				require.Nil(t, tk.refused)
				require.Nil(t, tk.decodeErr)
				require.Less(t, delivery, r.maxDeliver)
				require.False(t, r.denyAnonymous && tk.subj.Tenant == "", "a denied anonymous job never runs")
				require.Equal(t, tk.tenant, call.Tenant)
				require.Equal(t, "chat", call.Group)
				require.NotEmpty(t, call.Request.Messages)
				require.True(t, tk.req.Tenant == "" || tk.req.Tenant == tk.tenant, "a body naming another tenant never runs")
			}
		}
	})
}

// A job's tenant and reply come from its subject and headers; the body can
// neither move it to another tenant nor send its answer elsewhere.
func TestIntakeIdentifies(t *testing.T) {
	t.Parallel()
	r := rules{maxDeliver: 5, validationRetries: 2}
	ns := r.subjects.ForTenant("")
	body := []byte(`{"id":"b1","tenant":"acme","messages":[{"role":"user","content":"x"}]}`)
	cases := []struct {
		name, subject string
		header        nats.Header
		tenant, id    string
		reply         string
		code          bus.ErrorCode // "" runs
	}{
		{name: "anonymous, id from the body", subject: "llm.req.chat", tenant: "", id: "b1", reply: "llm.res.b1", code: bus.CodeInvalidRequest},
		{name: "tenant subject, body agrees", subject: "llm.t.acme.req.chat", tenant: "acme", id: "b1", reply: "llm.t.acme.res.b1"},
		{name: "header id wins", subject: "llm.t.acme.req.chat", header: nats.Header{bus.HeaderMsgID: {"h1"}}, tenant: "acme", id: "h1", reply: "llm.t.acme.res.h1"},
		{name: "bad header id", subject: "llm.t.acme.req.chat", header: nats.Header{bus.HeaderMsgID: {"a b"}}, tenant: "acme", id: "seq-7", reply: "llm.t.acme.res.seq-7", code: bus.CodeInvalidRequest},
		{name: "reply into another tenant", subject: "llm.t.acme.req.chat", header: nats.Header{bus.HeaderReply: {"llm.t.evil.res.b1"}}, tenant: "acme", id: "b1", reply: "llm.t.acme.res.b1", code: bus.CodeInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tk := r.decode(inbound{ns: ns, subject: tc.subject, header: tc.header, data: body, seq: 7})
			require.Equal(t, tc.tenant, tk.tenant)
			require.Equal(t, tc.id, tk.id)
			require.Equal(t, tc.reply, tk.reply)
			call, rej := r.check(&tk, "chat", 1, time.Now())
			if tc.code == "" {
				require.Nil(t, rej)
				require.Equal(t, tc.tenant, call.Tenant)
				return
			}
			require.NotNil(t, rej)
			require.Equal(t, tc.code, rej.code, rej.msg)
		})
	}
}
