package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/switchyard/switchyard/pkg/bus"
)

// badCase is one malformed or hostile request, published as raw bytes.
type badCase struct {
	name    string
	subject string // default llm.req.bad
	id      string // Nats-Msg-Id header; empty: none
	header  map[string]string
	body    []byte

	// codes are the acceptable result codes ("ok" for a successful
	// result); empty: no result can be published (nobody to tell).
	codes []string
	// dlq: a copy must land in LLM_DLQ.
	dlq bool
	// seqID: the job has no usable id, so the worker names it seq-<stream
	// sequence> and answers (if at all) on that reply prefix.
	seqID bool
	// published: sent by the Go client, not as raw bytes.
	published bool
}

const contentJSON, contentMsgpack = "application/json", "application/msgpack"

func okMessages() []map[string]any {
	return []map[string]any{{"role": "user", "content": "hello"}}
}

func jsonBody(t *testing.T, v map[string]any) []byte {
	t.Helper()
	b, err := bus.JSON.Marshal(v)
	require.NoError(t, err)
	return b
}

func msgpackBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

// schemaRequest is a JSON request whose response_format carries schema.
func schemaRequest(t *testing.T, schema any) []byte {
	t.Helper()
	return jsonBody(t, map[string]any{
		"messages": okMessages(),
		"response_format": map[string]any{
			"type":        "json_schema",
			"json_schema": map[string]any{"name": "bomb", "schema": schema},
		},
	})
}

func badCorpus(t *testing.T, runID string) []badCase {
	t.Helper()
	valid, err := bus.Msgpack.Marshal(&bus.Request{Messages: []bus.Message{{Role: "user", Content: bus.Text(strings.Repeat("truncate me ", 40))}}})
	require.NoError(t, err)

	// A schema nested 200 objects deep (the compile limit is 64).
	deep := map[string]any{"type": "string"}
	for range 200 {
		deep = map[string]any{"type": "object", "properties": map[string]any{"a": deep}}
	}
	// "Billion laughs": 30 layers of $defs, each referencing the next twice:
	// small as text, 2^30 nodes once expanded.
	defs := map[string]any{"l30": map[string]any{"type": "string"}}
	for i := range 30 {
		next := map[string]any{"$ref": fmt.Sprintf("#/$defs/l%d", i+1)}
		defs[fmt.Sprintf("l%d", i)] = map[string]any{"anyOf": []any{next, next}}
	}
	laughs := map[string]any{"$defs": defs, "$ref": "#/$defs/l0"}
	// A schema over the 256 KiB size limit, inside the 1 MiB payload.
	props := map[string]any{}
	for i := range 6000 {
		props[fmt.Sprintf("property_with_a_long_name_%05d", i)] = map[string]any{"type": "string", "description": "padding"}
	}
	wide := map[string]any{"type": "object", "properties": props}

	// JSON nested past encoding/json's depth limit, in an unknown field.
	jsonDepthBomb := []byte(`{"messages":[{"role":"user","content":"hi"}],"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`)
	// msgpack nested 100k arrays deep, in an unknown field.
	var mp bytes.Buffer
	mp.WriteByte(0x82) // fixmap of 2
	mp.Write(msgpackBody(t, "messages"))
	mp.Write(msgpackBody(t, okMessages()))
	mp.Write(msgpackBody(t, "x"))
	mp.Write(bytes.Repeat([]byte{0x91}, 100_000)) // fixarray of 1, nested
	mp.WriteByte(0xc0)

	invalid := []string{string(bus.CodeInvalidRequest)}
	cases := []badCase{
		{name: "truncated_msgpack", header: map[string]string{"Content-Type": contentMsgpack}, body: valid[:len(valid)/2], codes: invalid, dlq: true},
		{name: "empty_body", body: nil, codes: invalid, dlq: true},
		{name: "garbage_bytes", body: []byte{0xc1, 0xc1, 'g', 'a', 'r', 'b'}, codes: invalid, dlq: true},
		{name: "json_not_an_object", header: map[string]string{"Content-Type": contentJSON}, body: []byte(`[1,2,3]`), codes: invalid, dlq: true},
		{name: "json_truncated", header: map[string]string{"Content-Type": contentJSON}, body: []byte(`{"messages":[{"role":"user","content":"hel`), codes: invalid, dlq: true},
		{name: "wrong_type_messages", body: []byte(`{"messages":"hello"}`), codes: invalid, dlq: true},
		{name: "wrong_type_temperature", body: []byte(`{"messages":[{"role":"user","content":"hi"}],"temperature":"hot"}`), codes: invalid, dlq: true},
		{name: "wrong_type_content", body: []byte(`{"messages":[{"role":"user","content":42}]}`), codes: invalid, dlq: true},
		{name: "wrong_type_msgpack", header: map[string]string{"Content-Type": contentMsgpack}, body: msgpackBody(t, map[string]any{"messages": 42, "max_tokens": "many"}), codes: invalid, dlq: true},
		{name: "json_labelled_msgpack", header: map[string]string{"Content-Type": contentMsgpack}, body: []byte(`{"messages":[{"role":"user","content":"hi"}]}`), codes: invalid, dlq: true},
		{name: "json_depth_bomb", body: jsonDepthBomb, codes: invalid, dlq: true},
		{name: "msgpack_depth_bomb", header: map[string]string{"Content-Type": contentMsgpack}, body: mp.Bytes(), codes: invalid, dlq: true},
		{name: "missing_messages", body: []byte(`{"model":"gpt-4o"}`), codes: invalid},
		{name: "empty_messages", body: []byte(`{"messages":[]}`), codes: invalid},
		{name: "out_of_range_temperature", body: jsonBody(t, map[string]any{"messages": okMessages(), "temperature": 7}), codes: invalid},
		{name: "bad_deadline", body: jsonBody(t, map[string]any{"messages": okMessages(), "deadline": "yesterday"}), codes: invalid},
		{name: "past_deadline", body: jsonBody(t, map[string]any{"messages": okMessages(), "deadline": "2001-01-01T00:00:00Z"}), codes: []string{string(bus.CodeDeadlineExceeded)}},
		{name: "unknown_response_format", body: jsonBody(t, map[string]any{"messages": okMessages(), "response_format": map[string]any{"type": "xml"}}), codes: invalid},
		{name: "schema_not_an_object", body: schemaRequest(t, 42), codes: invalid},
		{name: "schema_bomb_deep", body: schemaRequest(t, deep), codes: invalid},
		{name: "schema_bomb_laughs", body: schemaRequest(t, laughs), codes: invalid},
		{name: "schema_bomb_wide", body: schemaRequest(t, wide), codes: invalid},
		// Invalid UTF-8: JSON decoding replaces it with U+FFFD and msgpack
		// keeps the bytes; either way the job must end with one result and
		// no crash.
		{name: "invalid_utf8_json", body: []byte("{\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff\xfe\xfd bytes\"}]}"), codes: []string{"ok", string(bus.CodeInvalidRequest)}},
		{name: "invalid_utf8_msgpack", header: map[string]string{"Content-Type": contentMsgpack}, body: msgpackBody(t, map[string]any{"messages": []map[string]any{{"role": "user", "content": "bad \xff\xfe bytes"}}, "metadata": map[string]string{"k\xff": "v\xfe"}}), codes: []string{"ok", string(bus.CodeInvalidRequest)}},
		// A string near the 1 MiB payload limit is accepted by the server;
		// the worker may run it or refuse it, but answers it once.
		{name: "huge_string", body: jsonBody(t, map[string]any{"messages": []map[string]any{{"role": "user", "content": strings.Repeat("word ", 205_000)}}}), codes: []string{"ok", string(bus.CodeTooLarge), string(bus.CodeContextWindowExceeded), string(bus.CodeInvalidRequest)}},
		{name: "huge_metadata", body: jsonBody(t, map[string]any{"messages": okMessages(), "metadata": map[string]string{"blob": strings.Repeat("m", 1_000_000)}}), codes: []string{"ok", string(bus.CodeTooLarge), string(bus.CodeInvalidRequest)}},
		{name: "invalid_reply", header: map[string]string{"Llm-Reply": "bad..reply"}, body: jsonBody(t, map[string]any{"messages": okMessages()}), codes: invalid},
		{name: "unknown_group", subject: "llm.req.nosuch-" + runID, body: jsonBody(t, map[string]any{"messages": okMessages()}), codes: []string{string(bus.CodeUnknownGroup)}},
		{name: "invalid_group_token", subject: "llm.req.bad.extra-" + runID, body: jsonBody(t, map[string]any{"messages": okMessages()}), codes: []string{string(bus.CodeUnknownGroup)}},
		// No usable id: the worker names the job after its stream sequence.
		{name: "invalid_body_id", body: jsonBody(t, map[string]any{"id": "has spaces", "messages": okMessages()}), codes: invalid, seqID: true},
		// Undecodable and anonymous: nobody to answer, so only the DLQ has it.
		{name: "anonymous_garbage", body: []byte{0xc1, 'x', 'y'}, dlq: true, seqID: true},
	}
	for i := range cases {
		if !cases[i].seqID {
			cases[i].id = fmt.Sprintf("bad-%s-%s", runID, strings.ReplaceAll(cases[i].name, "_", "-"))
		}
		if cases[i].subject == "" {
			cases[i].subject = "llm.req.bad"
		}
	}
	return cases
}

// scenarioBadInputs publishes the corpus and checks that each bad request
// gets its typed error result or lands in the DLQ, that no worker crashed,
// and that nothing is left to redeliver.
func scenarioBadInputs(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c.waitHealthy(ctx, t)
	restartsBefore, _ := c.workerStates(ctx, t)
	runID := randomID()
	cases := badCorpus(t, runID)

	start := time.Now()
	// Larger than one message: a client without the Object Store refuses
	// it; the default client stores the body in the Object Store and
	// publishes a reference, which the worker must resolve or refuse.
	huge := &bus.Request{
		ID:       fmt.Sprintf("bad-%s-over-max-payload", runID),
		Messages: []bus.Message{{Role: "user", Content: bus.Text(strings.Repeat("x", 1_100_000))}},
	}
	plain, err := bus.NewClient(c.nc, bus.WithoutObjectStore())
	require.NoError(t, err)
	_, err = plain.Publish(ctx, "bad", huge)
	require.ErrorIs(t, err, bus.ErrTooLarge)
	job, err := c.client.Publish(ctx, "bad", huge)
	require.NoError(t, err, "publish through the Object Store")
	_ = job.Close()
	cases = append(cases, badCase{name: "over_max_payload", id: huge.ID, published: true,
		codes: []string{"ok", string(bus.CodeTooLarge), string(bus.CodeInvalidRequest)}})

	for i := range cases {
		bc := &cases[i]
		if bc.published {
			continue
		}
		m := nats.NewMsg(bc.subject)
		if bc.id != "" {
			m.Header.Set(bus.HeaderMsgID, bc.id)
		}
		for k, v := range bc.header {
			m.Header.Set(k, v)
		}
		m.Data = bc.body
		ack, err := c.js.PublishMsg(ctx, m)
		require.NoError(t, err, "publish %s (%d bytes)", bc.name, len(bc.body))
		if bc.seqID {
			bc.id = fmt.Sprintf("seq-%d", ack.Sequence)
		}
	}

	// Results, by job id. The unknown-group sweep answers after its grace
	// period (5s), so the wait is generous.
	results := map[string]*bus.Result{}
	seen := map[string]time.Duration{} // when each result was first seen
	eventually(t, ctx, 60*time.Second, "a result for every answerable bad input", func(ctx context.Context) error {
		var missing []string
		for _, bc := range cases {
			if len(bc.codes) == 0 || results[bc.id] != nil {
				continue
			}
			r, err := c.client.StoredResult(ctx, c.client.Subjects().Reply(bc.id))
			if err != nil {
				return err
			}
			if r == nil {
				missing = append(missing, bc.name)
				continue
			}
			results[bc.id] = r
			seen[bc.id] = time.Since(start)
		}
		if len(missing) > 0 {
			return fmt.Errorf("no result yet for %v", missing)
		}
		return nil
	})
	// A bad input nobody can be told about has only its DLQ copy, which
	// the wait for results above does not wait for.
	var dlq map[string]nats.Header
	eventually(t, ctx, 30*time.Second, "a DLQ copy of every undecodable input", func(ctx context.Context) error {
		dlq = c.deadLetters(ctx, t)
		var missing []string
		for _, bc := range cases {
			if _, ok := dlq[bc.id]; bc.dlq && !ok {
				missing = append(missing, bc.name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no DLQ copy yet of %v", missing)
		}
		return nil
	})
	stored := c.storedResultCounts(ctx, t)

	answered, dead, lost, duplicated := 0, 0, 0, 0
	var lat []time.Duration
	for _, bc := range cases {
		t.Logf("%-26s -> %s", bc.name, describe(results[bc.id], dlq[bc.id]))
		reply := c.client.Subjects().Reply(bc.id)
		n := stored[bus.ResultSubject(reply)]
		if n > 1 {
			duplicated++
		}
		if results[bc.id] == nil && dlq[bc.id] == nil {
			lost++
		}
		if len(bc.codes) > 0 {
			r := results[bc.id]
			code := string(r.Status)
			if r.Status != bus.StatusOK {
				require.NotNil(t, r.Error, "%s: an error result carries its error", bc.name)
				code = string(r.Error.Code)
			}
			require.Contains(t, bc.codes, code, "%s: result code (message: %v)", bc.name, r.Error)
			require.EqualValues(t, 1, n, "%s: exactly one stored result", bc.name)
			answered++
			lat = append(lat, seen[bc.id])
		} else {
			require.Zero(t, n, "%s: nobody to answer", bc.name)
		}
		if bc.dlq {
			h, ok := dlq[bc.id]
			require.True(t, ok, "%s: a copy in LLM_DLQ", bc.name)
			require.NotEmpty(t, h.Get("Llm-Dlq-Code"), "%s: the DLQ copy says why", bc.name)
			dead++
		}
	}
	require.Zero(t, lost, "bad inputs with neither a result nor a DLQ copy")
	require.Zero(t, duplicated, "bad inputs with more than one stored result")

	c.requireDrained(ctx, t, "bad")
	eventually(t, ctx, 30*time.Second, "requests stream empty", func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, bus.StreamRequests)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return fmt.Errorf("%d messages left: %v", info.State.Msgs, info.State.Subjects)
		}
		return nil
	})
	restartsAfter, running := c.workerStates(ctx, t)
	require.Equal(t, restartsBefore, restartsAfter, "no worker restarted")
	require.NotContains(t, running, false, "every worker still running")

	slices.Sort(lat)
	line := fmt.Sprintf("scenario bad_inputs: jobs=%d lost=%d duplicated=%d answered=%d dead-lettered=%d p99=%s (results polled from LLM_RESULTS every ~200ms; unknown groups wait for the sweep's 5s grace)",
		len(cases), lost, duplicated, answered, dead, percentile(lat, 99).Round(time.Millisecond))
	c.report(t, line)
}

func describe(r *bus.Result, dlq nats.Header) string {
	var parts []string
	if r != nil {
		if r.Error != nil {
			parts = append(parts, fmt.Sprintf("result %s: %.100s", r.Error.Code, r.Error.Message))
		} else {
			parts = append(parts, "result "+string(r.Status))
		}
	}
	if dlq != nil {
		parts = append(parts, "DLQ ("+dlq.Get("Llm-Dlq-Code")+")")
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// deadLetters reads every message of LLM_DLQ and returns their headers by
// the job id the worker gave them.
func (c *cluster) deadLetters(ctx context.Context, t *testing.T) map[string]nats.Header {
	t.Helper()
	out := map[string]nats.Header{}
	eventually(t, ctx, 30*time.Second, "read LLM_DLQ", func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, bus.StreamDLQ)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					continue
				}
				return err
			}
			out[m.Header.Get("Llm-Dlq-Job")] = m.Header
		}
		return nil
	})
	return out
}
