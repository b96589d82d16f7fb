package bus

import (
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// EncodeMsgpack writes an Event as msgpack without reflection. A worker
// publishes one event per token, so this is its hottest encoding: the
// reflective encoder took about 750 ns and 6 allocations per event. The
// output is byte for byte what the reflective encoder writes for the struct
// tags (same keys, same order, same omitempty rules, compact integers as
// the pooled encoder is set up), so readers see no difference; the codec
// tests check that.
func (e *Event) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 4
	for _, set := range [...]bool{e.Deployment != "", e.Group != "", e.Delta != "", e.Partial != nil, e.ToolCall != nil, e.Code != "", e.Reason != ""} {
		if set {
			n++
		}
	}
	if err := enc.EncodeMapLen(n); err != nil {
		return err
	}
	str := func(k, v string) error {
		if err := enc.EncodeString(k); err != nil {
			return err
		}
		return enc.EncodeString(v)
	}
	if err := str("id", e.ID); err != nil {
		return err
	}
	if err := str("type", string(e.Type)); err != nil {
		return err
	}
	if err := enc.EncodeString("seq"); err != nil {
		return err
	}
	if err := enc.EncodeUint(e.Seq); err != nil {
		return err
	}
	if err := enc.EncodeString("attempt"); err != nil {
		return err
	}
	if err := enc.EncodeInt(int64(e.Attempt)); err != nil {
		return err
	}
	if e.Deployment != "" {
		if err := str("deployment", e.Deployment); err != nil {
			return err
		}
	}
	if e.Group != "" {
		if err := str("group", e.Group); err != nil {
			return err
		}
	}
	if e.Delta != "" {
		if err := str("delta", e.Delta); err != nil {
			return err
		}
	}
	if e.Partial != nil {
		if err := enc.EncodeString("partial"); err != nil {
			return err
		}
		if err := enc.Encode(e.Partial); err != nil {
			return err
		}
	}
	if e.ToolCall != nil {
		if err := enc.EncodeString("tool_call"); err != nil {
			return err
		}
		if err := enc.Encode(e.ToolCall); err != nil {
			return err
		}
	}
	if e.Code != "" {
		if err := str("code", e.Code); err != nil {
			return err
		}
	}
	if e.Reason != "" {
		if err := str("reason", e.Reason); err != nil {
			return err
		}
	}
	return nil
}

var _ msgpack.CustomEncoder = (*Event)(nil)

// DecodeMsgpack reads an Event without reflection: a reader (the Go client,
// the gateway) decodes one event per token, and the reflective decoder cost
// half of the gateway's streaming CPU. It decodes what the reflective
// decoder decodes, into the same values, and fails where it fails (unknown
// keys are skipped, a value of the wrong type is an error; the codec tests
// compare the two on random input), except that a repeated partial key
// replaces the value (see decodeField). An event that is not a map, and
// the rare fields partial and tool_call, are left to the reflective
// decoder.
func (e *Event) DecodeMsgpack(dec *msgpack.Decoder) error {
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return dec.DecodeValue(reflect.ValueOf((*eventFields)(e)).Elem())
	}
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	key := keyBufs.Get().(*[16]byte)
	defer keyBufs.Put(key)
	for range n {
		k, err := decodeKey(dec, key[:])
		if err != nil {
			return err
		}
		if err := e.decodeField(dec, k, key[:]); err != nil {
			return err
		}
	}
	return nil
}

// keyBufs hold the map keys DecodeMsgpack reads: a buffer on its stack
// escapes (the decoder reads through an io.Reader), one allocation more per
// event.
var keyBufs = sync.Pool{New: func() any { return new([16]byte) }}

// eventFields is Event without its codec methods: the reflective decoder's
// view of it.
type eventFields Event

// decodeKey reads a map key as the reflective decoder does (a string, bin
// or nil) into buf when it fits; a longer key names no field and is
// returned as "".
func decodeKey(dec *msgpack.Decoder, buf []byte) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	if n > len(buf) {
		return nil, dec.ReadFull(make([]byte, n))
	}
	return buf[:n], dec.ReadFull(buf[:n])
}

// decodeField decodes the value of key; buf is scratch space (key may be
// in it).
func (e *Event) decodeField(dec *msgpack.Decoder, key, buf []byte) error {
	var err error
	switch string(key) {
	case "id":
		e.ID, err = dec.DecodeString()
	case "type":
		e.Type, err = decodeEventType(dec, buf)
	case "seq":
		e.Seq, err = dec.DecodeUint64()
	case "attempt":
		var a int64
		a, err = dec.DecodeInt64()
		e.Attempt = int(a)
	case "deployment":
		e.Deployment, err = dec.DecodeString()
	case "group":
		e.Group, err = dec.DecodeString()
	case "delta":
		e.Delta, err = dec.DecodeString()
	case "partial":
		// A second partial replaces the first; the reflective decoder
		// decodes it into the first's value instead, and panics when that
		// is not a map.
		e.Partial = nil
		err = dec.DecodeValue(reflect.ValueOf(&e.Partial).Elem())
	case "tool_call":
		err = dec.DecodeValue(reflect.ValueOf(&e.ToolCall).Elem())
	case "code":
		e.Code, err = dec.DecodeString()
	case "reason":
		e.Reason, err = dec.DecodeString()
	default:
		err = dec.Skip()
	}
	return err
}

var _ msgpack.CustomDecoder = (*Event)(nil)

// eventTypes are the event types a worker sends, so that decoding one
// allocates no string.
var eventTypes = []EventType{EventStart, EventChunk, EventPartial, EventRestart, EventRetry, EventFallback, EventToolCall}

func decodeEventType(dec *msgpack.Decoder, buf []byte) (EventType, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return "", err
	}
	if n := int(c & msgpcode.FixedStrMask); !msgpcode.IsFixedString(c) || n > len(buf) {
		t, err := dec.DecodeString()
		return EventType(t), err
	}
	k, err := decodeKey(dec, buf)
	if err != nil {
		return "", err
	}
	for _, t := range eventTypes {
		if string(k) == string(t) {
			return t, nil
		}
	}
	return EventType(k), nil
}
