package bus

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// Headers of a dead letter: the worker copies a request it cannot run (it
// cannot be decoded, or it was delivered MaxDeliver times without an
// answer) to <prefix>.dlq.<group> with the request's own headers and these.
const (
	// HeaderDLQCode is the error code the job was answered with.
	HeaderDLQCode = "Llm-Dlq-Code"
	// HeaderDLQReason says why, in words (at most 1 KiB).
	HeaderDLQReason = "Llm-Dlq-Reason"
	// HeaderDLQSubject is the request subject the job arrived on: where a
	// replay publishes it again.
	HeaderDLQSubject = "Llm-Dlq-Subject"
	// HeaderDLQJob is the job id.
	HeaderDLQJob = "Llm-Dlq-Job"
	// HeaderDLQDeliveries is how many times the job had been delivered.
	HeaderDLQDeliveries = "Llm-Dlq-Deliveries"
	// HeaderDLQTruncated is set when the copy's body is only the head of
	// the request's (whose size it gives): a request within a few KB of the
	// max payload leaves no room for the dead-letter headers.
	HeaderDLQTruncated = "Llm-Dlq-Truncated"
	// HeaderReplay is set on a replayed dead letter: the sequence, in the
	// dead-letter stream, of the copy it replays. The worker runs it as the
	// job HeaderDLQJob named, as a new run: its result is stored even though
	// the job had one (the dead letter's error).
	HeaderReplay = "Llm-Replay"
)

// replayInfix separates a job id from the dead-letter sequence in a
// replay's message ids. Job ids never contain a dot (ValidJobID), so the
// last occurrence is always the one a replay added.
const replayInfix = ".replay."

// ReplayMsgID is the Nats-Msg-Id of the replay of dead letter dlqSeq of job
// jobID. It differs from the job's own id, so the request stream's dedupe
// window does not drop the replay as a re-publish of the original, and it is
// the same for every replay of that dead letter, so replaying it twice runs
// it once.
func ReplayMsgID(jobID string, dlqSeq uint64) string {
	return jobID + replayInfix + strconv.FormatUint(dlqSeq, 10)
}

// MsgJobID returns the job id that a request message's headers name: its
// Nats-Msg-Id, less the suffix ReplayMsgID added when the message is a
// replay (HeaderReplay set). It is "" when the message has no Nats-Msg-Id.
func MsgJobID(h nats.Header) string {
	id := h.Get(HeaderMsgID)
	seq := h.Get(HeaderReplay)
	if seq == "" {
		return id
	}
	if base, ok := strings.CutSuffix(id, replayInfix+seq); ok {
		return base
	}
	return id
}

// ReplayResultMsgID is the Nats-Msg-Id of a result: resultMsgID
// (Subjects.ResultMsgID) for a job's first run, qualified by the dead-letter
// sequence for a replay (replay is the request's HeaderReplay), so that the
// results stream's dedupe window keeps a replay's result beside the dead
// letter's error instead of dropping it.
func ReplayResultMsgID(resultMsgID, replay string) string {
	if replay == "" {
		return resultMsgID
	}
	return resultMsgID + replayInfix + replay
}
