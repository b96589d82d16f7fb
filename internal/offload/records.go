package offload

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/pkg/bus"
)

// Line is one job waiting for, or sent in, a vendor batch: its request
// message as the request stream stored it, so that the host can answer it,
// or run it live, exactly as if it had just been delivered.
type Line struct {
	Job       string      `json:"job"`
	Group     string      `json:"group"`
	Subject   string      `json:"subject"`
	Header    nats.Header `json:"header,omitempty"`
	Data      []byte      `json:"data"`
	Published time.Time   `json:"published"` // the message's time in the request stream
	Stream    string      `json:"stream"`
	Seq       uint64      `json:"seq"`
	// Added is when the line was recorded: the group's vendor_batch.after
	// counts from the oldest line waiting.
	Added time.Time `json:"added"`

	// Batch is the ref of the batch that claimed the line (empty while it
	// waits): written with compare-and-set on the line's revision, so that
	// of two workers that both collected it (both believed they held the
	// lease) only one sends it to a vendor.
	Batch string `json:"batch,omitempty"`

	// Tenant is the namespace whose bucket holds the line ("" anonymous);
	// not stored: the bucket says it.
	Tenant string `json:"-"`
	// rev is the line's revision when it was read.
	rev uint64
}

// Batch states.
const (
	// stateSubmitting: recorded, the vendor may or may not have it yet
	// (FindBatch tells).
	stateSubmitting = "submitting"
	// stateSubmitted: the vendor has it under VendorID.
	stateSubmitted = "submitted"
)

// Batch is one vendor batch of a tenant's lines of one group.
type Batch struct {
	Ref        string `json:"ref"`
	Group      string `json:"group"`
	Deployment string `json:"deployment"`
	Model      string `json:"model"`
	// Jobs are the batch's jobs; the line of Jobs[i] has custom id
	// customID(Ref, i) at the vendor.
	Jobs []string `json:"jobs"`
	// Sent is the number of lines sent (jobs whose request could not be
	// made are not), for FindBatch.
	Sent      int       `json:"sent"`
	State     string    `json:"state"`
	VendorID  string    `json:"vendor_id,omitempty"`
	Created   time.Time `json:"created"`
	Submitted time.Time `json:"submitted,omitzero"`
	// Status and Done are what the vendor said at the last poll.
	Status string `json:"status,omitempty"`
	Done   int    `json:"done,omitempty"`
	// Tenant is the namespace whose bucket holds the batch (set by
	// Batches); not stored.
	Tenant string `json:"-"`
	// Attempt is the last worker that set out to send a batch still
	// submitting, and when: another leaves the batch to it for a lease.
	Attempt *attempt `json:"attempt,omitempty"`
}

// attempt is who set out to send a batch, when.
type attempt struct {
	Owner string    `json:"owner"`
	At    time.Time `json:"at"`
}

// lease is who works a bucket, until when.
type lease struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

// The bucket's keys are bus's (bus.OffloadLineKey, ...), which Status
// counts.
const (
	leaseKey     = bus.OffloadLeaseKey
	linePrefix   = "l."
	batchPrefix  = "b."
	customPrefix = "l"
)

func lineKey(group, job string) string { return bus.OffloadLineKey(group, job) }
func batchKey(b *Batch) string         { return bus.OffloadBatchKey(b.Group, b.Ref) }

// parseLineKey returns the group and job of a line key.
func parseLineKey(key string) (group, job string, ok bool) {
	kind, group, job, ok := bus.ParseOffloadKey(key)
	return group, job, ok && kind == 'l'
}

// customID is the vendor's custom id of line i of batch ref: the ref is in
// it, so that the answers of a batch FindBatch took for ref's by mistake
// (Anthropic's is found by size and time) are never another batch's jobs'.
func customID(ref string, i int) string { return ref + "-" + customPrefix + strconv.Itoa(i) }

// lineIndex is the index of the line of custom id id in batch ref, or -1.
func lineIndex(id, ref string, n int) int {
	s, ok := strings.CutPrefix(id, ref+"-"+customPrefix)
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= n {
		return -1
	}
	return i
}

// newRef names a new batch: [A-Za-z0-9_-], as every vendor takes.
func newRef() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "sy-" + hex.EncodeToString(b)
}

func (b *Batch) String() string {
	return fmt.Sprintf("batch %s (%s/%s, %d lines, %s %s)", b.Ref, b.Group, b.Deployment, len(b.Jobs), b.State, b.VendorID)
}
