package bus

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"
)

// Encoding is a wire encoding of bodies.
type Encoding uint8

// Encodings. Msgpack is the default.
const (
	Msgpack Encoding = iota
	JSON
)

// Content types on the wire.
const (
	ContentTypeMsgpack = "application/msgpack"
	ContentTypeJSON    = "application/json"
)

// ContentType returns the encoding's Content-Type header value.
func (e Encoding) ContentType() string {
	if e == JSON {
		return ContentTypeJSON
	}
	return ContentTypeMsgpack
}

func (e Encoding) String() string {
	if e == JSON {
		return "json"
	}
	return "msgpack"
}

// Detect returns the encoding of a body: from the Content-Type header when it
// names one, else JSON when the first non-space byte is '{', else msgpack.
func Detect(h nats.Header, body []byte) Encoding {
	switch ct := h.Get(HeaderContentType); ct {
	case ContentTypeJSON, "json", "application/json; charset=utf-8":
		return JSON
	case ContentTypeMsgpack, "application/x-msgpack", "application/vnd.msgpack", "msgpack":
		return Msgpack
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return JSON
	}
	return Msgpack
}

var encPool = sync.Pool{New: func() any {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	// Sorted map keys make an encoding a function of the value, so the
	// same request always has the same digest (HeaderDigest).
	enc.SetSortMapKeys(true)
	return &pooledEnc{buf: &buf, enc: enc}
}}

type pooledEnc struct {
	buf *bytes.Buffer
	enc *msgpack.Encoder
}

// Marshal encodes v in the encoding.
func (e Encoding) Marshal(v any) ([]byte, error) {
	if e == JSON {
		return json.Marshal(v)
	}
	p := encPool.Get().(*pooledEnc)
	defer encPool.Put(p)
	p.buf.Reset()
	if err := p.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(p.buf.Bytes()), nil
}

// Unmarshal decodes data in the encoding into v. Unknown fields are ignored;
// a value of the wrong type is an error. Msgpack input is checked first so
// that no length prefix can make the decoder allocate more than the message
// could hold.
func (e Encoding) Unmarshal(data []byte, v any) error {
	if e == JSON {
		return json.Unmarshal(data, v)
	}
	if err := checkMsgpack(data); err != nil {
		return err
	}
	return msgpack.Unmarshal(data, v)
}

func reflectTypeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }
