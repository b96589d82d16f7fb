package bus

import (
	"bytes"
	"math/rand/v2"
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

// decodeBoth decodes data as an Event with DecodeMsgpack and with the
// reflective decoder, and requires the same outcome: both fail, or both
// give the same event.
func decodeBoth(t testing.TB, data []byte) {
	t.Helper()
	var got Event
	errGot := msgpack.Unmarshal(data, &got)
	if bytes.Count(data, []byte("partial")) > 1 {
		// A repeated partial: the reflective decoder merges the values or
		// panics (see DecodeMsgpack); only decoding without a panic is
		// required.
		return
	}
	var ref reflectiveEvent
	errRef := msgpack.Unmarshal(data, &ref)
	if errRef != nil || errGot != nil {
		require.Equal(t, errRef != nil, errGot != nil, "input %x: reflective error %v, DecodeMsgpack error %v", data, errRef, errGot)
		return
	}
	require.Equal(t, Event(ref), got, "input %x", data)
}

func TestEventMsgpackDecodesAsTheReflectiveDecoder(t *testing.T) {
	t.Parallel()
	for _, e := range eventCases() {
		data := encodeReflective(t, e)
		decodeBoth(t, data)
		var got Event
		require.NoError(t, Msgpack.Unmarshal(data, &got))
		if e.Partial == nil {
			require.Equal(t, *e, got)
		}
	}
	// Random maps of the event's keys (and others), with values of every
	// msgpack type, cut short or changed at one byte now and then.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		data := randomEventMsgpack(t, rng)
		switch rng.IntN(8) {
		case 0:
			data = data[:rng.IntN(len(data)+1)]
		case 1:
			if len(data) > 0 {
				data[rng.IntN(len(data))] = byte(rng.IntN(256))
			}
		}
		decodeBoth(t, data)
	}
}

var eventKeys = []string{"id", "type", "seq", "attempt", "deployment", "group", "delta", "partial", "tool_call", "code", "reason", "", "other", "a-key-longer-than-sixteen-bytes"}

func randomEventMsgpack(t testing.TB, rng *rand.Rand) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	switch rng.IntN(20) {
	case 0:
		require.NoError(t, enc.EncodeNil())
		return buf.Bytes()
	case 1:
		require.NoError(t, enc.Encode([]any{"id", 1}))
		return buf.Bytes()
	}
	n := rng.IntN(8)
	require.NoError(t, enc.EncodeMapLen(n))
	for range n {
		switch k := eventKeys[rng.IntN(len(eventKeys))]; rng.IntN(10) {
		case 0:
			require.NoError(t, enc.EncodeBytes([]byte(k)))
		case 1:
			require.NoError(t, enc.EncodeInt(int64(rng.IntN(5))))
		default:
			require.NoError(t, enc.EncodeString(k))
		}
		require.NoError(t, enc.Encode(randomValue(rng, 2)))
	}
	return buf.Bytes()
}

func randomValue(rng *rand.Rand, depth int) any {
	switch rng.IntN(11) {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return int64(rng.Uint64())
	case 3:
		return rng.Uint64() >> rng.IntN(64)
	case 4:
		return -rng.Int64N(1 << 40)
	case 5:
		return rng.Float64()
	case 6:
		return []byte("bin")
	case 7:
		if depth > 0 {
			return []any{randomValue(rng, depth-1), randomValue(rng, depth-1)}
		}
		return []any{}
	case 8:
		if depth > 0 {
			m := map[string]any{}
			for range rng.IntN(3) {
				m[[]string{"index", "id", "name", "arguments", "x"}[rng.IntN(5)]] = randomValue(rng, depth-1)
			}
			return m
		}
		return map[string]any{}
	default:
		return []string{"", "chunk", "job-1", "ünïcode ✓", "mock-primary"}[rng.IntN(5)]
	}
}

func FuzzEventMsgpackDecode(f *testing.F) {
	for _, e := range eventCases() {
		f.Add(encodeReflective(f, e))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkMsgpack(data) != nil {
			return // Unmarshal refuses it before decoding
		}
		decodeBoth(t, data)
	})
}

func BenchmarkEventUnmarshal(b *testing.B) {
	data, err := Msgpack.Marshal(&Event{ID: "0195f3c2-7a5b-7c3e-9d2a-1b2c3d4e5f60", Type: EventChunk, Seq: 12, Attempt: 1, Delta: "switchyard "})
	require.NoError(b, err)
	b.Run("DecodeMsgpack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e Event
			if err := Msgpack.Unmarshal(data, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflective", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e reflectiveEvent
			if err := Msgpack.Unmarshal(data, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
