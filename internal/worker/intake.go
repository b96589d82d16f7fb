package worker

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Intake is what the worker makes of a message before anything runs: decode
// it, identify the job (whose it is, its id, where its answer goes) and
// validate it into a policy.Call, or into the reason it must not run. Both
// steps, decode and check, are pure functions of the message and the
// worker's rules: no NATS, no clock, so that they are fuzzed without a
// server (FuzzIntake). What needs NATS in between (reading a large body
// from the Object Store, looking for a stored result) is the job's.

// rules are what intake knows of the worker.
type rules struct {
	subjects          bus.Subjects // the worker's, for the anonymous tenant
	anonymousAs       string       // Config.AnonymousAs
	denyAnonymous     bool         // Config.DenyAnonymous
	maxDeliver        int          // Consumer.MaxDeliver: the last delivery is the worker's to end
	validationRetries int          // Config.ValidationRetries
}

func rulesOf(c Config) rules {
	return rules{
		subjects: c.Subjects, anonymousAs: c.AnonymousAs, denyAnonymous: c.DenyAnonymous,
		maxDeliver: c.Consumer.MaxDeliver, validationRetries: c.ValidationRetries,
	}
}

// inbound is a message as intake sees it.
type inbound struct {
	ns      bus.Subjects // the namespace of the request stream it is in
	subject string
	header  nats.Header
	data    []byte
	seq     uint64 // its sequence in the request stream
	// class is the class it was scheduled as (its queue's, see
	// Config.Classes); "" when not scheduled (the janitor's reads).
	class bus.Priority
}

// ticket is an identified job: whose it is, where its answer goes, what it
// asks.
type ticket struct {
	ns     bus.Subjects // the namespace of the request stream it came from
	subj   bus.Subjects // the namespace of the job's tenant, from its subject
	tenant string       // whose keys and budget it uses (see identify)
	// class is the class it was scheduled as and subjectClass its
	// subject's class token (default for the bare subject).
	class, subjectClass bus.Priority
	refused             *bus.Error // why the job must not run, found by identify
	id                  string
	reply               string
	digest              string // the request's Llm-Digest, echoed on the result
	replay              string // the request's Llm-Replay: a replayed dead letter's DLQ sequence
	answer              bool   // a requester can be told: it named an id or a reply
	enc                 bus.Encoding
	req                 bus.Request
	// decodeErr is why the body could not be read; the job is rejected
	// with it (see check), or handed back when it is a *transientError.
	decodeErr error
}

// decode reads and identifies a message. It never fails: what is wrong
// with the message is in the ticket (decodeErr, refused), for check.
func (r *rules) decode(in inbound) ticket {
	h := in.header
	if h == nil {
		h = nats.Header{}
	}
	t := ticket{ns: in.ns, enc: bus.Detect(h, in.data), class: in.class}
	t.decodeErr = t.enc.Unmarshal(in.data, &t.req)
	r.identify(&t, in.subject, h, in.seq)
	return t
}

// rejection is why a job must not run, as its error result says: its code
// and message, and whether the message is copied to the DLQ (what cannot be
// decoded, what ran out of deliveries).
type rejection struct {
	code bus.ErrorCode
	msg  string
	dlq  bool
}

// check validates a decoded ticket of group, on its delivery-th delivery,
// published at published: the call to run, or why it must not run.
func (r *rules) check(t *ticket, group string, delivery int, published time.Time) (*policy.Call, *rejection) {
	switch {
	case t.decodeErr != nil:
		return nil, &rejection{bus.CodeInvalidRequest, "cannot decode request (" + t.enc.String() + "): " + t.decodeErr.Error(), true}
	case delivery >= r.maxDeliver:
		return nil, &rejection{bus.CodeInternal, fmt.Sprintf("job was delivered %d times without finishing; moved to the dead-letter queue", delivery), true}
	}
	if e := t.admit(); e != nil {
		return nil, &rejection{code: e.Code, msg: e.Message}
	}
	lreq, err := toLLM(&t.req)
	if err == nil {
		err = checkCost(&t.req)
	}
	if err != nil {
		return nil, &rejection{code: bus.CodeInvalidRequest, msg: err.Error()}
	}
	con, err := policy.NewContract(lreq, t.req.ValidationRetries, r.validationRetries)
	if err != nil {
		return nil, &rejection{code: bus.CodeInvalidRequest, msg: err.Error()}
	}
	deadline, err := deadlineOf(&t.req, published)
	if err != nil {
		return nil, &rejection{code: bus.CodeInvalidRequest, msg: err.Error()}
	}
	return &policy.Call{
		Group: group, Request: lreq, Tenant: t.tenant, Deadline: deadline,
		Contract: con, Partials: t.req.Streaming(),
		NoCache: t.req.Cache != nil && !*t.req.Cache, MaxCostUSD: t.req.MaxCostUSD,
		Priority: policy.Priority(t.class),
	}, nil
}

// identify works out, from the message alone, whose job this is, its id,
// where its answer goes and whether anyone can be told; and, in t.refused,
// why it must not run. It never trusts the body for who the job belongs
// to:
//   - the tenant is the one whose subject the message arrived on (a token
//     the tenant's NATS permissions force), falling back to the request
//     stream's tenant for a subject whose group token is invalid;
//   - a job on the anonymous (v1) subjects runs as Config.AnonymousAs, or
//     is refused when DenyAnonymous;
//   - a requested reply prefix must pass Subjects.ReplyAllowed, else the
//     job is refused and answered on its default reply;
//   - an invalid Nats-Msg-Id is refused and answered under the default
//     reply of the id when that is a subject, else of seq-<stream sequence>,
//     which the publisher has from its PubAck.
func (r *rules) identify(t *ticket, subject string, h nats.Header, seq uint64) {
	t.subj = t.ns
	t.subjectClass = bus.PriorityDefault
	if rs, ok := r.subjects.ParseRequest(subject); ok {
		t.subj = r.subjects.ForTenant(rs.Tenant)
		t.subjectClass = rs.Priority
	}
	t.refused = nil
	t.tenant = t.subj.Tenant
	if t.subj.Tenant == "" {
		t.tenant = r.anonymousAs
		if r.denyAnonymous {
			t.refuse(bus.CodeAuth, "this fleet serves only tenants: jobs on the anonymous subjects ("+r.subjects.Request("<group>")+") are refused (model file: unknown_tenants: deny); publish on "+r.subjects.ForTenant("<tenant>").Request("<group>")+" as your tenant's NATS user")
		}
	}
	t.digest = h.Get(bus.HeaderDigest)
	t.replay = h.Get(bus.HeaderReplay)

	raw := bus.MsgJobID(h) // a replayed dead letter's id less its replay suffix
	t.id = raw
	if t.id == "" {
		t.id = t.req.ID
	}
	t.answer = t.id != ""
	badID := !bus.ValidJobID(t.id)
	if badID {
		// No usable id: one derived from the stream sequence, stable across
		// redeliveries.
		t.id = fmt.Sprintf("seq-%d", seq)
	}
	t.reply = t.subj.Reply(t.id)
	if badID && raw != "" {
		if rp := t.subj.Reply(raw); bus.ValidReply(rp) {
			if ok, _ := t.subj.ReplyAllowed(rp, t.id); ok {
				t.reply = rp
			}
		}
	}
	if rp := t.replyRequested(h); rp != "" {
		t.answer = true
		if ok, why := t.subj.ReplyAllowed(rp, t.id); ok {
			t.reply = rp
		} else {
			t.refuse(bus.CodeInvalidRequest, fmt.Sprintf("reply prefix %q is not allowed: %s (answered on %s)", truncate(rp, 300), why, t.reply))
		}
	}
	switch {
	case badID && raw != "":
		t.refuse(bus.CodeInvalidRequest, fmt.Sprintf("Nats-Msg-Id %q is not a valid job id: a job id is %s (answered on %s)", truncate(raw, 300), bus.JobIDRule, t.reply))
	case badID && t.req.ID != "":
		t.refuse(bus.CodeInvalidRequest, fmt.Sprintf("id %q is not a valid job id: a job id is %s (answered on %s)", truncate(t.req.ID, 300), bus.JobIDRule, t.reply))
	}
}

// refuse records the first reason the job must not run.
func (t *ticket) refuse(code bus.ErrorCode, msg string) {
	if t.refused == nil {
		t.refused = &bus.Error{Code: code, Message: msg}
	}
}

// admit returns why the decoded job must not run, if anything: what
// identify found, or a body that names another tenant than the one the job
// was published as.
func (t *ticket) admit() *bus.Error {
	if t.refused != nil {
		return t.refused
	}
	if bt := t.req.Tenant; bt != "" && bt != t.tenant {
		who := fmt.Sprintf("tenant %q", t.tenant)
		if t.tenant == "" {
			who = "the anonymous tenant"
		}
		return &bus.Error{Code: bus.CodeInvalidRequest, Message: fmt.Sprintf("the body names tenant %q but the job was published as %s; the tenant is who publishes, leave the field out", truncate(bt, 64), who)}
	}
	// The class is the subject's; the bare subject's is default or the
	// group's (t.class).
	if p := t.req.Priority; p != "" && p != t.subjectClass && p != t.class {
		if !bus.ValidPriority(p) {
			return &bus.Error{Code: bus.CodeInvalidRequest, Message: fmt.Sprintf("priority %q is not one of interactive, default, batch", truncate(string(p), 64))}
		}
		return &bus.Error{Code: bus.CodeInvalidRequest, Message: fmt.Sprintf("the body asks for priority %s but the job was published on a subject of class %s; the class is the subject's: publish on the %s subject (%s)", p, t.subjectClass, p, t.subj.RequestFor("<group>", p))}
	}
	return nil
}

func (t *ticket) replyRequested(h nats.Header) string {
	if r := h.Get(bus.HeaderReply); r != "" {
		return r
	}
	return t.req.Reply
}
