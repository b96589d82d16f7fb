package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The OpenAI wire format has fields that are "a string or an array" (content,
// stop) or "a string or an object" (tool_choice). These types decode both
// shapes from JSON and msgpack and encode the simplest one.

var jsonNull = []byte("null")

// MarshalJSON encodes a string, or the parts array when Parts is set.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.Parts != nil {
		return json.Marshal(c.Parts)
	}
	return json.Marshal(c.Text)
}

// UnmarshalJSON accepts a string, an array of parts or null.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*c = Content{}
	switch {
	case bytes.Equal(b, jsonNull):
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &c.Text)
	case len(b) > 0 && b[0] == '[':
		c.Parts = []Part{}
		return json.Unmarshal(b, &c.Parts)
	}
	return &json.UnmarshalTypeError{Value: "content", Type: contentType, Field: "content"}
}

// EncodeMsgpack encodes a string, or the parts array when Parts is set.
func (c Content) EncodeMsgpack(enc *msgpack.Encoder) error {
	if c.Parts != nil {
		return enc.Encode(c.Parts)
	}
	return enc.EncodeString(c.Text)
}

// DecodeMsgpack accepts a string, an array of parts or nil.
func (c *Content) DecodeMsgpack(dec *msgpack.Decoder) error {
	*c = Content{}
	code, err := dec.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case code == msgpcode.Nil:
		return dec.DecodeNil()
	case msgpcode.IsString(code):
		c.Text, err = dec.DecodeString()
		return err
	case msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32:
		c.Parts = []Part{}
		return dec.Decode(&c.Parts)
	}
	return fmt.Errorf("content: want a string or an array of parts, got msgpack code %#x", code)
}

// Strings is a list of strings that also accepts a single string (OpenAI's
// stop).
type Strings []string

// UnmarshalJSON accepts a string, an array of strings or null.
func (s *Strings) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, jsonNull):
		*s = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = Strings{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// DecodeMsgpack accepts a string, an array of strings or nil.
func (s *Strings) DecodeMsgpack(dec *msgpack.Decoder) error {
	code, err := dec.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case code == msgpcode.Nil:
		*s = nil
		return dec.DecodeNil()
	case msgpcode.IsString(code):
		one, err := dec.DecodeString()
		*s = Strings{one}
		return err
	}
	var many []string
	if err := dec.Decode(&many); err != nil {
		return err
	}
	*s = many
	return nil
}

// EncodeMsgpack encodes an array of strings.
func (s Strings) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.Encode([]string(s)) }

type toolChoiceObject struct {
	Type     string `json:"type" msgpack:"type"`
	Function struct {
		Name string `json:"name" msgpack:"name"`
	} `json:"function" msgpack:"function"`
}

func (t *ToolChoice) object() toolChoiceObject {
	var o toolChoiceObject
	o.Type = "function"
	o.Function.Name = t.Function
	return o
}

func (t *ToolChoice) fromObject(o toolChoiceObject) error {
	if o.Type != "" && o.Type != "function" || o.Function.Name == "" {
		return errors.New(`tool_choice: want "auto", "none", "required" or {"type":"function","function":{"name":...}}`)
	}
	*t = ToolChoice{Mode: "function", Function: o.Function.Name}
	return nil
}

// MarshalJSON encodes the mode string, or the object for a named function.
func (t ToolChoice) MarshalJSON() ([]byte, error) {
	if t.Mode == "function" {
		return json.Marshal(t.object())
	}
	return json.Marshal(t.Mode)
}

// UnmarshalJSON accepts a mode string or a function object.
func (t *ToolChoice) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*t = ToolChoice{}
		return json.Unmarshal(b, &t.Mode)
	}
	var o toolChoiceObject
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	return t.fromObject(o)
}

// EncodeMsgpack encodes the mode string, or the object for a named function.
func (t ToolChoice) EncodeMsgpack(enc *msgpack.Encoder) error {
	if t.Mode == "function" {
		return enc.Encode(t.object())
	}
	return enc.EncodeString(t.Mode)
}

// DecodeMsgpack accepts a mode string or a function object.
func (t *ToolChoice) DecodeMsgpack(dec *msgpack.Decoder) error {
	code, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if msgpcode.IsString(code) {
		*t = ToolChoice{}
		t.Mode, err = dec.DecodeString()
		return err
	}
	var o toolChoiceObject
	if err := dec.Decode(&o); err != nil {
		return err
	}
	return t.fromObject(o)
}

var contentType = reflectTypeOf[Content]()
