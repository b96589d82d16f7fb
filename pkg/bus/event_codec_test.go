package bus

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// reflectiveEvent has Event's fields and tags but not its EncodeMsgpack, so
// msgpack encodes it by reflection: the reference output.
type reflectiveEvent Event

func encodeReflective(t testing.TB, e *Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	require.NoError(t, enc.Encode((*reflectiveEvent)(e)))
	return buf.Bytes()
}

func eventCases() []*Event {
	return []*Event{
		{},
		{ID: "job-1", Type: EventChunk, Seq: 1, Attempt: 1, Delta: "hello "},
		{ID: "0195f3c2-7a5b-7c3e-9d2a-1b2c3d4e5f60", Type: EventChunk, Seq: 70000, Attempt: 300, Delta: "ünïcode ✓"},
		{ID: "j", Type: EventStart, Seq: 1 << 40, Attempt: 2, Deployment: "mock-primary"},
		{ID: "j", Type: EventRestart, Seq: 3, Attempt: 2, Reason: "worker died mid-stream"},
		{ID: "j", Type: EventRetry, Seq: 4, Attempt: 1, Deployment: "d", Code: "rate_limited", Reason: "429"},
		{ID: "j", Type: EventFallback, Seq: 4, Attempt: 1, Group: "backup", Code: "provider_unavailable", Reason: "503"},
		{ID: "j", Type: EventPartial, Seq: 5, Partial: map[string]any{"name": "Ada", "tags": []any{"x", 1.5}}},
		{ID: "j", Type: EventToolCall, Seq: 6, ToolCall: &ToolCallDelta{Index: 1, ID: "call_1", Name: "get_weather", Arguments: `{"city":`}},
		{ID: "j", Type: EventChunk, Seq: 7, Attempt: -1, Delta: string(make([]byte, 70000))},
	}
}

func TestEventMsgpackMatchesReflectiveEncoding(t *testing.T) {
	t.Parallel()
	for _, e := range eventCases() {
		got, err := Msgpack.Marshal(e)
		require.NoError(t, err)
		var back Event
		require.NoError(t, Msgpack.Unmarshal(got, &back))
		if e.Partial != nil {
			// Go maps have no order, so neither encoder's bytes are
			// stable: compare what a reader decodes.
			var ref Event
			require.NoError(t, Msgpack.Unmarshal(encodeReflective(t, e), &ref))
			require.Equal(t, ref, back)
			continue
		}
		require.Equal(t, encodeReflective(t, e), got, "%+v", e)
		require.Equal(t, *e, back)
	}
}

func FuzzEventMsgpack(f *testing.F) {
	f.Add("id", "chunk", uint64(1), 1, "dep", "delta", "code", "reason")
	f.Add("", "", uint64(0), 0, "", "", "", "")
	f.Fuzz(func(t *testing.T, id, typ string, seq uint64, attempt int, dep, delta, code, reason string) {
		e := &Event{ID: id, Type: EventType(typ), Seq: seq, Attempt: attempt, Deployment: dep, Delta: delta, Code: code, Reason: reason}
		got, err := Msgpack.Marshal(e)
		require.NoError(t, err)
		require.Equal(t, encodeReflective(t, e), got)
	})
}

func BenchmarkEventMarshal(b *testing.B) {
	e := &Event{ID: "0195f3c2-7a5b-7c3e-9d2a-1b2c3d4e5f60", Type: EventChunk, Seq: 12, Attempt: 1, Delta: "switchyard "}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Msgpack.Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}
