package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BucketObjects is the anonymous tenant's Object Store bucket of request
// bodies too large for one NATS message; a named tenant's is
// Subjects.ObjectBucket (LLM_OBJECTS_<tenant>). The Go client of the
// anonymous tenant creates it on demand; tenants' buckets are provisioned
// by the workers.
const BucketObjects = "LLM_OBJECTS"

// ObjectsTTL is how long a large request body is kept in BucketObjects: the
// worker deletes it once the job's result is stored, and the TTL removes
// those of jobs that never ran.
const ObjectsTTL = 24 * time.Hour

// payloadHeadroom is left for headers and JetStream's envelope when deciding
// whether a body fits in one message.
const payloadHeadroom = 4 << 10

// WithoutObjectStore makes Publish refuse a request larger than the
// server's max payload with ErrTooLarge instead of putting it in the Object
// Store.
func WithoutObjectStore() ClientOption { return func(c *Client) { c.noObjects = true } }

// ErrObjectName is returned when a request's Llm-Object header names an
// object other than the job's own: a job may read only the body that was
// stored for it.
var ErrObjectName = errors.New("bus: the Llm-Object header must name the job's own id")

func objectStoreConfig(ns Subjects, storage jetstream.StorageType, replicas int) jetstream.ObjectStoreConfig {
	desc := "Switchyard request bodies larger than one NATS message"
	if ns.Tenant != "" {
		desc += ", of tenant " + ns.Tenant
	}
	return jetstream.ObjectStoreConfig{
		Bucket:      ns.ObjectBucket(),
		Description: desc,
		TTL:         ObjectsTTL,
		Storage:     storage,
		Replicas:    max(replicas, 1),
	}
}

// objectStore returns the tenant's large-request bucket. The anonymous
// tenant's is created when missing; a named tenant's must have been
// provisioned by a worker configured with the tenant.
func (c *Client) objectStore(ctx context.Context) (jetstream.ObjectStore, error) {
	c.objMu.Lock()
	defer c.objMu.Unlock()
	if c.objs != nil {
		return c.objs, nil
	}
	name := c.subj.ObjectBucket()
	obs, err := c.js.ObjectStore(ctx, name)
	if c.subj.Tenant == "" && (errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)) {
		obs, err = c.js.CreateObjectStore(ctx, objectStoreConfig(c.subj, jetstream.FileStorage, 1))
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			obs, err = c.js.ObjectStore(ctx, name)
		}
	}
	if err != nil {
		if c.subj.Tenant != "" && errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("bus: object store %s: %w (workers create it for every tenant of their model file)", name, err)
		}
		return nil, fmt.Errorf("bus: object store %s: %w", name, err)
	}
	c.objs = obs
	return obs, nil
}

// objectMsg stores body in the Object Store under the job id and returns the
// small message that references it: header Llm-Object and a body that keeps
// what the worker needs before it reads the object (id, reply, stream,
// deadline, metadata).
func (c *Client) objectMsg(ctx context.Context, msg *nats.Msg, req *Request, body []byte) error {
	obs, err := c.objectStore(ctx)
	if err != nil {
		return err
	}
	// A cluster electing a stream leader answers "no responders" for a
	// moment: try a few times before giving up.
	for try := 0; ; try++ {
		_, err = obs.PutBytes(ctx, req.ID, body)
		if err == nil {
			break
		}
		if try == 4 || !errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("bus: store large request %s: %w", req.ID, err)
		}
		select {
		case <-time.After(time.Duration(250*(try+1)) * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("bus: store large request %s: %w", req.ID, ctx.Err())
		}
	}
	stub := Request{
		ID: req.ID, Model: req.Model, Stream: req.Stream, Reply: req.Reply, Tenant: req.Tenant,
		Metadata: req.Metadata, Deadline: req.Deadline, TimeoutMS: req.TimeoutMS,
	}
	msg.Data, err = c.enc.Marshal(&stub)
	if err != nil {
		return fmt.Errorf("bus: encode request: %w", err)
	}
	msg.Header.Set(HeaderObject, req.ID)
	return nil
}

// RequestBody returns the body of a request message of subj's tenant: its
// data, or, when the Llm-Object header names an object, that object from the
// tenant's bucket. The object must be named after the job (jobID), else
// ErrObjectName: a job never reads a body stored for another job, and never
// one of another tenant.
func RequestBody(ctx context.Context, js jetstream.JetStream, subj Subjects, jobID string, h nats.Header, data []byte) ([]byte, error) {
	name := h.Get(HeaderObject)
	if name == "" {
		return data, nil
	}
	if name != jobID {
		return nil, ErrObjectName
	}
	bucket := subj.ObjectBucket()
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", bucket, err)
	}
	// The bucket allows direct gets, which any replica may answer: one that
	// lags behind the publisher's write reports a just-stored object as
	// missing. Ask again for a moment before calling it missing.
	b, err := failsafe.With[[]byte](objectLag).WithContext(ctx).Get(func() ([]byte, error) { return obs.GetBytes(ctx, name) })
	if err != nil {
		return nil, fmt.Errorf("request object %q: %w", name, err)
	}
	return b, nil
}

// objectLag retries reading an object that a lagging replica does not have
// yet, for about two seconds.
var objectLag = retrypolicy.NewBuilder[[]byte]().
	HandleErrors(jetstream.ErrObjectNotFound).
	WithMaxRetries(6).
	WithBackoff(50*time.Millisecond, 800*time.Millisecond).
	ReturnLastFailure().
	Build()

// DeleteRequestObject deletes the object a request message of subj's tenant
// references, if any and if it is the job's own (see RequestBody); call it
// once the job's result is stored. A missing object is not an error.
func DeleteRequestObject(ctx context.Context, js jetstream.JetStream, subj Subjects, jobID string, h nats.Header) error {
	name := h.Get(HeaderObject)
	if name == "" || name != jobID {
		return nil
	}
	obs, err := js.ObjectStore(ctx, subj.ObjectBucket())
	if err != nil {
		return err
	}
	err = obs.Delete(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	return err
}

// A result larger than one NATS message is stored whole as an object of the
// job's tenant's bucket, and the result message is a small summary of it
// (id, status, usage, timings, the error's code and message) with the
// Llm-Object header naming the object. Client.DecodeResult, and so Submit,
// Job.Next, StoredResult and Watch, return the whole result; other clients
// read the object from the same bucket (see docs/wire.md).

// ResultObjectName names the object holding the whole result of delivery
// attempt of job jobID: one per delivery, so that a job that ran twice never
// has its stored summary point at the other run's body.
func ResultObjectName(jobID string, attempt int) string {
	return jobID + ".result." + strconv.Itoa(attempt)
}

// ErrResultObject is returned (wrapped) by DecodeResult when a result's
// Llm-Object header names an object that is not one of its job's results.
var ErrResultObject = errors.New("bus: the Llm-Object header of a result must name one of its job's result objects")

// PutResultObject stores an encoded result as object name of subj's
// tenant's bucket (for workers).
func PutResultObject(ctx context.Context, js jetstream.JetStream, subj Subjects, name, contentType string, body []byte) error {
	obs, err := js.ObjectStore(ctx, subj.ObjectBucket())
	if err != nil {
		return fmt.Errorf("object store %s: %w", subj.ObjectBucket(), err)
	}
	meta := jetstream.ObjectMeta{Name: name, Headers: nats.Header{HeaderContentType: []string{contentType}}}
	if _, err := obs.Put(ctx, meta, bytes.NewReader(body)); err != nil {
		return fmt.Errorf("store result object %s: %w", name, err)
	}
	return nil
}

// DecodeResult decodes a result message (header and data) of the client's
// tenant. When it is the summary of a result too large for one message, the
// whole result is read from the object its Llm-Object header names, in the
// tenant's bucket; that object must be one of the same job's results.
func (c *Client) DecodeResult(ctx context.Context, h nats.Header, data []byte) (*Result, error) {
	enc := Detect(h, data)
	var r Result
	if err := enc.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("bus: decode result: %w", err)
	}
	name := h.Get(HeaderObject)
	if name == "" {
		return &r, nil
	}
	if !strings.HasPrefix(name, r.ID+".result.") {
		return nil, fmt.Errorf("%w: %q for job %s", ErrResultObject, name, r.ID)
	}
	obs, err := c.js.ObjectStore(ctx, c.subj.ObjectBucket())
	if err != nil {
		return nil, fmt.Errorf("bus: result of job %s: object store %s: %w", r.ID, c.subj.ObjectBucket(), err)
	}
	body, err := obs.GetBytes(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("bus: result of job %s: object %s: %w", r.ID, name, err)
	}
	var whole Result
	if err := enc.Unmarshal(body, &whole); err != nil {
		return nil, fmt.Errorf("bus: decode result object %s: %w", name, err)
	}
	if whole.ID != r.ID {
		return nil, fmt.Errorf("%w: object %s holds job %s", ErrResultObject, name, whole.ID)
	}
	return &whole, nil
}
