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
	HeaderObject      = "Llm-Object" // a large request (or result) body stored in the Object Store
	HeaderTraceParent = "traceparent"
	// HeaderTenant is set by the worker on a dead letter: the tenant whose
	// subject the job arrived on ("" for the anonymous tenant). It is never
	// read from a request.
	HeaderTenant = "Llm-Tenant"
)

// Subjects builds, and parses, the subject, stream and bucket names of one
// deployment of Switchyard, in the namespace of one tenant. It is the one
// place that knows their layout:
//
//	what              anonymous tenant (v1)   tenant T
//	requests          <p>.req.<group>         <p>.t.T.req.<group>
//	... of a class    <p>.req.<group>.<class> <p>.t.T.req.<group>.<class>
//	default reply     <p>.res.<id>            <p>.t.T.res.<id>
//	cancel            <p>.cancel.<id>         <p>.t.T.cancel.<id>
//	dead letters      <p>.dlq.<group>         <p>.dlq.<group> (operators only)
//	request stream    LLM_REQUESTS            LLM_REQUESTS_T
//	object bucket     LLM_OBJECTS             LLM_OBJECTS_T
//	cancel bucket     LLM_CANCEL              LLM_CANCEL_T
//	result msg id     <id>                    T.<id>
//
// The zero value is the anonymous tenant under DefaultPrefix. The tenant is
// a subject token that NATS permissions force for a tenant's users (see
// docs/security.md), so the worker learns a job's tenant from the subject it
// arrived on, never from its body.
type Subjects struct {
	Prefix string
	// Tenant is the tenant whose namespace the subjects are in; "" is the
	// anonymous tenant, whose subjects are the v1 ones. It must be a valid
	// tenant name (ValidTenant) or empty.
	Tenant string
}

func (s Subjects) p() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// ForTenant returns the subjects of tenant t under the same prefix.
func (s Subjects) ForTenant(t string) Subjects { return Subjects{Prefix: s.Prefix, Tenant: t} }

// ns is the root of the tenant's namespace: "<p>" or "<p>.t.<tenant>".
func (s Subjects) ns() string {
	if s.Tenant == "" {
		return s.p()
	}
	return s.p() + ".t." + s.Tenant
}

// Request is the subject producers publish a group's jobs to: the group's
// default class.
func (s Subjects) Request(group string) string { return s.ns() + ".req." + group }

// RequestFor is the subject of a group's jobs of class p: Request(group)
// for the default class (and for ""), Request(group) + "." + p for the
// others (see Priority).
func (s Subjects) RequestFor(group string, p Priority) string {
	if t := p.token(); t != "" {
		return s.Request(group) + "." + t
	}
	return s.Request(group)
}

// Requests matches every request subject of the tenant: the subjects of its
// request stream.
func (s Subjects) Requests() string { return s.ns() + ".req.>" }

// RequestSubject is what a request subject says: whose job it is, for
// which model group, in which class.
type RequestSubject struct {
	Tenant string // "" for the anonymous tenant (v1 subjects)
	Group  string
	// Priority is the class token, PriorityDefault for the bare subject
	// (the group's default class).
	Priority Priority
}

// ParseRequest reads a request subject of any tenant under the prefix. It
// returns false for anything else, including a tenant or group token that
// is not a valid name and a class token other than interactive or batch
// (the default class has no token).
func (s Subjects) ParseRequest(subject string) (RequestSubject, bool) {
	rest, ok := strings.CutPrefix(subject, s.p()+".")
	if !ok {
		return RequestSubject{}, false
	}
	var rs RequestSubject
	if t, ok := strings.CutPrefix(rest, "t."); ok {
		name, after, found := strings.Cut(t, ".")
		if !found || !ValidTenant(name) {
			return RequestSubject{}, false
		}
		rs.Tenant, rest = name, after
	}
	rest, ok = strings.CutPrefix(rest, "req.")
	if !ok {
		return RequestSubject{}, false
	}
	group, class, classed := strings.Cut(rest, ".")
	rs.Priority = PriorityDefault
	if classed {
		rs.Priority = Priority(class)
		if rs.Priority.token() == "" || !ValidPriority(rs.Priority) {
			return RequestSubject{}, false
		}
	}
	if !ValidGroup(group) {
		return RequestSubject{}, false
	}
	rs.Group = group
	return rs, true
}

// GroupOf returns the group of one of the tenant's request subjects (of
// any class), and false when subject is not a request subject of this
// tenant naming one valid group token and at most a valid class token.
func (s Subjects) GroupOf(subject string) (string, bool) {
	rs, ok := s.ParseRequest(subject)
	if !ok || rs.Tenant != s.Tenant {
		rest, _ := strings.CutPrefix(subject, s.ns()+".req.")
		return rest, false
	}
	return rs.Group, true
}

// Reply is the default reply prefix of a job.
func (s Subjects) Reply(jobID string) string { return s.ns() + ".res." + jobID }

// Results matches the result subjects of the tenant's default reply
// prefixes.
func (s Subjects) Results() string { return s.ns() + ".res.*.result" }

// StoredEvents matches the event subjects of the tenant's default reply
// prefixes, stored in the results stream when durable streaming is on.
func (s Subjects) StoredEvents() string { return s.ns() + ".res.*.events" }

// TenantResults matches the result subjects of every named tenant's default
// reply prefixes (the results stream holds them beside the anonymous ones).
func (s Subjects) TenantResults() string { return s.p() + ".t.*.res.*.result" }

// TenantStoredEvents matches the stored event subjects of every named
// tenant.
func (s Subjects) TenantStoredEvents() string { return s.p() + ".t.*.res.*.events" }

// EventsSubject is the subject of a job's events under its reply prefix.
func EventsSubject(reply string) string { return reply + ".events" }

// ResultSubject is the subject of a job's result under its reply prefix.
func ResultSubject(reply string) string { return reply + ".result" }

// Cancel is the subject that cancels one of the tenant's jobs.
func (s Subjects) Cancel(jobID string) string { return s.ns() + ".cancel." + jobID }

// Cancels matches every cancel subject of the tenant.
func (s Subjects) Cancels() string { return s.ns() + ".cancel.*" }

// TenantCancels matches the cancel subjects of every named tenant.
func (s Subjects) TenantCancels() string { return s.p() + ".t.*.cancel.*" }

// ParseCancel reads a cancel subject of any tenant under the prefix: the
// tenant ("" anonymous) and the job id.
func (s Subjects) ParseCancel(subject string) (tenant, jobID string, ok bool) {
	rest, ok := strings.CutPrefix(subject, s.p()+".")
	if !ok {
		return "", "", false
	}
	return tenantJob(rest, "cancel")
}

// DLQ is the dead-letter subject of a group. Dead letters are for
// operators and are not in any tenant's namespace: the copy carries the
// tenant in the Llm-Tenant header.
func (s Subjects) DLQ(group string) string { return s.p() + ".dlq." + group }

// DLQs matches every dead-letter subject.
func (s Subjects) DLQs() string { return s.p() + ".dlq.>" }

// InResults reports whether reply is one of the tenant's default reply
// prefixes (<ns>.res.<one token>), whose result is stored in the results
// stream (and deduplicated) rather than only published.
func (s Subjects) InResults(reply string) bool {
	rest, ok := strings.CutPrefix(reply, s.ns()+".res.")
	return ok && rest != "" && !strings.Contains(rest, ".")
}

// RequestStream is the name of the tenant's request stream. Each tenant
// has its own because JetStream's dedupe window (Nats-Msg-Id) is per
// stream: in a shared one a tenant could take another's future job id.
func (s Subjects) RequestStream() string { return s.suffixed(StreamRequests) }

// ObjectBucket is the name of the tenant's large-request Object Store
// bucket (its stream is "OBJ_" + the name).
func (s Subjects) ObjectBucket() string { return s.suffixed(BucketObjects) }

// CancelBucket is the name of the tenant's cancel-marker KV bucket (its
// stream is "KV_" + the name). A bucket per tenant lets its size be capped
// without one tenant's markers pushing out another's.
func (s Subjects) CancelBucket() string { return s.suffixed(BucketCancel) }

// CacheBucket is the name of the tenant's response-cache KV bucket (its
// stream is "KV_" + the name): a bucket per tenant, so that one tenant's
// answers are never read for another's requests and each can be capped.
func (s Subjects) CacheBucket() string { return s.suffixed(BucketCache) }

// OffloadBucket is the name of the tenant's vendor-batch KV bucket (its
// stream is "KV_" + the name): the tenant's jobs waiting for a vendor batch
// and its batches in flight, apart from every other tenant's.
func (s Subjects) OffloadBucket() string { return s.suffixed(BucketOffload) }

func (s Subjects) suffixed(name string) string {
	if s.Tenant == "" {
		return name
	}
	return name + "_" + s.Tenant
}

// ResultMsgID is the Nats-Msg-Id a worker stores a job's result with: the
// job id qualified by the tenant, so that two tenants' job ids never
// collide in the results stream's dedupe window. Anonymous ids (which
// never contain a dot) are unchanged.
func (s Subjects) ResultMsgID(jobID string) string {
	if s.Tenant == "" {
		return jobID
	}
	return s.Tenant + "." + jobID
}

// ValidTenant reports whether name is a valid tenant name:
// [a-z0-9][a-z0-9_-]{0,31}, exactly. There is no case folding and no
// trimming ("Acme" and "acme " are invalid, not "acme"), so a tenant's
// budget cannot be dodged by spelling its name another way. The anonymous
// tenant's empty name is not a valid tenant name.
func ValidTenant(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		lower := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !lower && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return true
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

// JobIDRule says what a valid job id is, for error messages.
const JobIDRule = "1 to 128 characters of [A-Za-z0-9_=/-]"

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
// tokens without wildcards or white space. Whether a job may use it is
// ReplyAllowed's question.
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

// ReplyAllowed reports whether a job of this tenant with id jobID may have
// its events and result published under reply, and if not, why. The rules
// keep a job's output inside its tenant's namespace and off every subject
// that means something else:
//   - under the tenant's reply namespace (<ns>.res.), the first token is
//     the job's own id (<ns>.res.<id>, the default, or <ns>.res.<id>.x), or
//     the prefix has two or more tokens there: it is then never another
//     job's default reply and never lands in the results stream;
//   - a named tenant may use nothing else;
//   - the anonymous tenant may also use a prefix outside the deployment's
//     whole namespace (<p> and everything under it), outside every "$"
//     subject ($JS, $KV, $O, $SYS, ...) and outside _INBOX (request-reply
//     replies).
func (s Subjects) ReplyAllowed(reply, jobID string) (bool, string) {
	if !ValidReply(reply) {
		return false, "not a subject prefix of dot-separated tokens without wildcards or white space"
	}
	own := s.ns() + ".res."
	if rest, ok := strings.CutPrefix(reply, own); ok {
		first, _, more := strings.Cut(rest, ".")
		if first == jobID || more {
			return true, ""
		}
		return false, "it is another job's default reply prefix"
	}
	if s.Tenant != "" {
		return false, "a tenant's reply prefix must be under " + own
	}
	switch {
	case reply == s.p() || strings.HasPrefix(reply, s.p()+"."):
		return false, "the " + s.p() + " namespace is Switchyard's; use " + own + "<id> or a prefix of your own"
	case reply[0] == '$':
		return false, "subjects starting with $ are the server's"
	case reply == "_INBOX" || strings.HasPrefix(reply, "_INBOX."):
		return false, "_INBOX is for request-reply replies"
	}
	return true, ""
}

// ParseResult reads the result subject of a default reply prefix of any
// tenant under the prefix (<p>.res.<id>.result, <p>.t.T.res.<id>.result):
// the tenant ("" anonymous) and the job id.
func (s Subjects) ParseResult(subject string) (tenant, jobID string, ok bool) {
	rest, ok := strings.CutPrefix(subject, s.p()+".")
	if !ok {
		return "", "", false
	}
	if rest, ok = strings.CutSuffix(rest, ".result"); !ok {
		return "", "", false
	}
	return tenantJob(rest, "res")
}

// tenantJob reads the rest of a subject after the prefix,
// "[t.<tenant>.]<kind>.<job id>": the tenant ("" anonymous) and the job id.
func tenantJob(rest, kind string) (tenant, jobID string, ok bool) {
	if t, ok := strings.CutPrefix(rest, "t."); ok {
		name, after, found := strings.Cut(t, ".")
		if !found || !ValidTenant(name) {
			return "", "", false
		}
		tenant, rest = name, after
	}
	id, ok := strings.CutPrefix(rest, kind+".")
	if !ok || !ValidJobID(id) {
		return "", "", false
	}
	return tenant, id, true
}
