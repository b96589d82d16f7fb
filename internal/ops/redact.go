package ops

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/pkg/bus"
)

// Request is a job's request as an operator may see it: secrets never
// shown. Header values and metadata whose names say they are credentials
// are replaced, and so is anything in the text that has the shape of an
// API key or a bearer token (a user may paste one into a prompt).
type Request struct {
	// Stream and Seq say where the request was read: the tenant's request
	// stream (Status queued or running) or the dead-letter stream.
	Stream string    `json:"stream"`
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Status string    `json:"status,omitempty"`
	// Headers are the message's headers, redacted, sorted by name.
	Headers []Header `json:"headers"`
	// Encoding is json or msgpack.
	Encoding string `json:"encoding"`
	// Body is the decoded request, redacted; nil when it could not be
	// decoded (DecodeError says why, Raw shows its start) or lives in the
	// Object Store (Object names it).
	Body        *bus.Request `json:"body,omitempty"`
	DecodeError string       `json:"decode_error,omitempty"`
	Raw         string       `json:"raw,omitempty"`
	Object      string       `json:"object,omitempty"`
	Size        int          `json:"size"`
}

// Header is one header of a message.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Redacted replaces a secret.
const Redacted = "[redacted]"

// secretName matches header and metadata names that hold credentials.
var secretName = regexp.MustCompile(`(?i)(auth|api[-_]?key|token|secret|passw|cookie|credential|signature|private)`)

// secretValue matches text shaped like a credential: vendors' API key
// prefixes (OpenAI, Anthropic, Switchyard, Groq, Google, AWS access keys,
// GitHub, Slack), bearer tokens and JWTs.
var secretValue = regexp.MustCompile(`(?i:bearer\s+)[A-Za-z0-9._~+/=-]{8,}` +
	`|\b(?:sk|sy|pk|rk|gsk|xai)-[A-Za-z0-9_-]{12,}` +
	`|\bAIza[0-9A-Za-z_-]{30,}` +
	`|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b` +
	`|\bgh[pousr]_[A-Za-z0-9]{30,}` +
	`|\bxox[abprs]-[A-Za-z0-9-]{10,}` +
	`|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)

// RedactText replaces what looks like a credential in s.
func RedactText(s string) string { return secretValue.ReplaceAllString(s, Redacted) }

// maxDataURL is how much of an inline image is shown.
const maxDataURL = 80

// requestOf decodes a request message for display, redacted.
func requestOf(h nats.Header, data []byte) *Request {
	enc := bus.Detect(h, data)
	r := &Request{Encoding: enc.String(), Size: len(data), Object: h.Get(bus.HeaderObject)}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := strings.Join(h[k], ", ")
		if secretName.MatchString(k) && k != bus.HeaderDigest {
			v = Redacted
		} else {
			v = RedactText(v)
		}
		r.Headers = append(r.Headers, Header{Name: k, Value: v})
	}
	var req bus.Request
	if err := enc.Unmarshal(data, &req); err != nil {
		r.DecodeError = err.Error()
		r.Raw = preview(data)
		return r
	}
	redactRequest(&req)
	r.Body = &req
	return r
}

func redactRequest(req *bus.Request) {
	for k, v := range req.Metadata {
		if secretName.MatchString(k) {
			req.Metadata[k] = Redacted
		} else {
			req.Metadata[k] = RedactText(v)
		}
	}
	for i := range req.Messages {
		m := &req.Messages[i]
		m.Content.Text = RedactText(m.Content.Text)
		for j := range m.Content.Parts {
			p := &m.Content.Parts[j]
			p.Text = RedactText(p.Text)
			if p.ImageURL != nil && strings.HasPrefix(p.ImageURL.URL, "data:") && len(p.ImageURL.URL) > maxDataURL {
				p.ImageURL.URL = fmt.Sprintf("%s… (%d bytes)", p.ImageURL.URL[:maxDataURL], len(p.ImageURL.URL))
			}
		}
		for j := range m.ToolCalls {
			m.ToolCalls[j].Function.Arguments = RedactText(m.ToolCalls[j].Function.Arguments)
		}
	}
	req.Reply = RedactText(req.Reply)
}

// preview shows the start of an undecodable body: printable text as it is,
// anything else escaped.
func preview(b []byte) string {
	const max = 2048
	if len(b) > max {
		b = b[:max]
	}
	if utf8.Valid(b) {
		return RedactText(string(b))
	}
	return RedactText(fmt.Sprintf("%q", b))
}
