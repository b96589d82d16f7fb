package bus

import (
	"strings"
)

// DefaultPrefix is the subject prefix used when none is configured.
const DefaultPrefix = "llm"

// Header names of the wire contract. NATS headers are case-sensitive.
const (
	HeaderMsgID       = "Nats-Msg-Id"
	HeaderReply       = "Llm-Reply"
	HeaderContentType = "Content-Type"
	HeaderObject      = "Llm-Object" // a large request body stored in the Object Store
	HeaderTraceParent = "traceparent"
)

// Subjects builds the subject names of one deployment of Switchyard.
// The zero value uses DefaultPrefix.
type Subjects struct {
	Prefix string
}

func (s Subjects) p() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// Request is the subject producers publish a group's jobs to.
func (s Subjects) Request(group string) string { return s.p() + ".req." + group }

// Requests matches every request subject.
func (s Subjects) Requests() string { return s.p() + ".req.>" }

// GroupOf returns the group of a request subject, and false when subject is
// not a request subject of exactly one group token.
func (s Subjects) GroupOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, s.p()+".req.")
	if !ok || rest == "" || strings.Contains(rest, ".") {
		return rest, false
	}
	return rest, true
}

// Reply is the default reply prefix of a job.
func (s Subjects) Reply(jobID string) string { return s.p() + ".res." + jobID }

// Results matches the result subjects of default reply prefixes: the
// subjects of the results stream.
func (s Subjects) Results() string { return s.p() + ".res.*.result" }

// StoredEvents matches the event subjects of default reply prefixes, stored
// in the results stream when durable streaming is on.
func (s Subjects) StoredEvents() string { return s.p() + ".res.*.events" }

// EventsSubject is the subject of a job's events under its reply prefix.
func EventsSubject(reply string) string { return reply + ".events" }

// ResultSubject is the subject of a job's result under its reply prefix.
func ResultSubject(reply string) string { return reply + ".result" }

// Cancel is the subject that cancels a job.
func (s Subjects) Cancel(jobID string) string { return s.p() + ".cancel." + jobID }

// Cancels matches every cancel subject.
func (s Subjects) Cancels() string { return s.p() + ".cancel.*" }

// DLQ is the dead-letter subject of a group.
func (s Subjects) DLQ(group string) string { return s.p() + ".dlq." + group }

// DLQs matches every dead-letter subject.
func (s Subjects) DLQs() string { return s.p() + ".dlq.>" }

// InResults reports whether reply lies under the results stream's subjects,
// so that its result is stored (and deduplicated) rather than only published.
func (s Subjects) InResults(reply string) bool {
	rest, ok := strings.CutPrefix(reply, s.p()+".res.")
	return ok && rest != "" && !strings.Contains(rest, ".")
}

// ValidGroup reports whether name is a valid group name: one token of
// [a-z0-9_-], at most 64 characters.
func ValidGroup(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidJobID reports whether id can be used as a subject token, a message id
// and a KV key: 1 to 128 characters of [A-Za-z0-9_=/-].
func ValidJobID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '=' || c == '/') {
			return false
		}
	}
	return true
}

// ValidReply reports whether reply is a usable reply prefix: dot-separated
// tokens without wildcards or white space.
func ValidReply(reply string) bool {
	if reply == "" || len(reply) > 256 || reply[0] == '.' || reply[len(reply)-1] == '.' || strings.Contains(reply, "..") {
		return false
	}
	for i := 0; i < len(reply); i++ {
		c := reply[i]
		if c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
			return false
		}
	}
	return true
}
