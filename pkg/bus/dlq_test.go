package bus_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

func TestReplayIDs(t *testing.T) {
	t.Parallel()
	h := func(kv ...string) nats.Header {
		out := nats.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	require.Equal(t, "job-1.replay.42", bus.ReplayMsgID("job-1", 42))
	for _, c := range []struct {
		h    nats.Header
		want string
	}{
		{h(bus.HeaderMsgID, "job-1"), "job-1"},
		{h(bus.HeaderMsgID, "job-1.replay.42", bus.HeaderReplay, "42"), "job-1"},
		// Without the replay header, the id is taken as it is (and the
		// worker refuses it: a job id has no dot).
		{h(bus.HeaderMsgID, "job-1.replay.42"), "job-1.replay.42"},
		// A replay header that does not match the suffix removes nothing.
		{h(bus.HeaderMsgID, "job-1.replay.42", bus.HeaderReplay, "7"), "job-1.replay.42"},
		{h(bus.HeaderReplay, "7"), ""},
		{h(), ""},
	} {
		require.Equal(t, c.want, bus.MsgJobID(c.h), "%v", c.h)
	}
	require.Equal(t, "acme.job-1", bus.ReplayResultMsgID("acme.job-1", ""))
	require.Equal(t, "acme.job-1.replay.42", bus.ReplayResultMsgID("acme.job-1", "42"))
}

func TestParseResult(t *testing.T) {
	t.Parallel()
	s := bus.Subjects{}
	for _, c := range []struct {
		subject, tenant, id string
		ok                  bool
	}{
		{"llm.res.job-1.result", "", "job-1", true},
		{"llm.t.acme.res.job-1.result", "acme", "job-1", true},
		{"llm.res.job-1.events", "", "", false},
		{"llm.t.Acme.res.job-1.result", "", "", false},
		{"llm.res.a.b.result", "", "", false},
		{"other.res.job-1.result", "", "", false},
		{"llm.req.demo", "", "", false},
	} {
		tenant, id, ok := s.ParseResult(c.subject)
		require.Equal(t, c.ok, ok, c.subject)
		require.Equal(t, c.tenant, tenant, c.subject)
		require.Equal(t, c.id, id, c.subject)
	}
	tenant, id, ok := bus.Subjects{Prefix: "x"}.ParseResult("x.t.acme.res.j.result")
	require.True(t, ok)
	require.Equal(t, []string{"acme", "j"}, []string{tenant, id})
}
