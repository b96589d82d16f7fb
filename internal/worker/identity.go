package worker

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// identify works out, from the message alone, whose job this is, its id,
// where its answer goes and whether anyone can be told; and, in j.refused,
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
func (j *job) identify(subject string, h nats.Header, meta *jetstream.MsgMetadata) {
	w := j.w
	j.subj = j.ns
	if rs, ok := w.cfg.Subjects.ParseRequest(subject); ok {
		j.subj = w.cfg.Subjects.ForTenant(rs.Tenant)
	}
	j.refused = nil
	j.tenant = j.subj.Tenant
	if j.subj.Tenant == "" {
		j.tenant = w.cfg.AnonymousAs
		if w.cfg.DenyAnonymous {
			j.refuse(bus.CodeAuth, "this fleet serves only tenants: jobs on the anonymous subjects ("+w.cfg.Subjects.Request("<group>")+") are refused (model file: unknown_tenants: deny); publish on "+w.cfg.Subjects.ForTenant("<tenant>").Request("<group>")+" as your tenant's NATS user")
		}
	}
	j.digest = h.Get(bus.HeaderDigest)
	j.replay = h.Get(bus.HeaderReplay)

	raw := bus.MsgJobID(h) // a replayed dead letter's id less its replay suffix
	j.id = raw
	if j.id == "" {
		j.id = j.req.ID
	}
	j.answer = j.id != ""
	fallback := fmt.Sprintf("seq-%d", meta.Sequence.Stream)
	badID := !bus.ValidJobID(j.id)
	if badID {
		// No usable id: one derived from the stream sequence, stable across
		// redeliveries.
		j.id = fallback
	}
	j.reply = j.subj.Reply(j.id)
	if badID && raw != "" {
		if r := j.subj.Reply(raw); bus.ValidReply(r) {
			if ok, _ := j.subj.ReplyAllowed(r, j.id); ok {
				j.reply = r
			}
		}
	}
	if r := j.replyRequested(h); r != "" {
		j.answer = true
		if ok, why := j.subj.ReplyAllowed(r, j.id); ok {
			j.reply = r
		} else {
			j.refuse(bus.CodeInvalidRequest, fmt.Sprintf("reply prefix %q is not allowed: %s (answered on %s)", truncate(r, 300), why, j.reply))
		}
	}
	switch {
	case badID && raw != "":
		j.refuse(bus.CodeInvalidRequest, fmt.Sprintf("Nats-Msg-Id %q is not a valid job id: a job id is %s (answered on %s)", truncate(raw, 300), bus.JobIDRule, j.reply))
	case badID && j.req.ID != "":
		j.refuse(bus.CodeInvalidRequest, fmt.Sprintf("id %q is not a valid job id: a job id is %s (answered on %s)", truncate(j.req.ID, 300), bus.JobIDRule, j.reply))
	}
}

// refuse records the first reason the job must not run.
func (j *job) refuse(code bus.ErrorCode, msg string) {
	if j.refused == nil {
		j.refused = &bus.Error{Code: code, Message: msg}
	}
}

// admit returns why the decoded job must not run, if anything: what
// identify found, or a body that names another tenant than the one the job
// was published as.
func (j *job) admit() *bus.Error {
	if j.refused != nil {
		return j.refused
	}
	if t := j.req.Tenant; t != "" && t != j.tenant {
		who := fmt.Sprintf("tenant %q", j.tenant)
		if j.tenant == "" {
			who = "the anonymous tenant"
		}
		return &bus.Error{Code: bus.CodeInvalidRequest, Message: fmt.Sprintf("the body names tenant %q but the job was published as %s; the tenant is who publishes, leave the field out", truncate(t, 64), who)}
	}
	return nil
}

func (j *job) replyRequested(h nats.Header) string {
	if r := h.Get(bus.HeaderReply); r != "" {
		return r
	}
	return j.req.Reply
}
