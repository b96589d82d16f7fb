package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BucketObjects is the Object Store bucket that holds request bodies too
// large for one NATS message. The Go client creates it on demand.
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

// objectStore returns the large-request bucket, creating it when missing.
func (c *Client) objectStore(ctx context.Context) (jetstream.ObjectStore, error) {
	c.objMu.Lock()
	defer c.objMu.Unlock()
	if c.objs != nil {
		return c.objs, nil
	}
	obs, err := c.js.ObjectStore(ctx, BucketObjects)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		obs, err = c.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      BucketObjects,
			Description: "Switchyard request bodies larger than one NATS message",
			TTL:         ObjectsTTL,
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			obs, err = c.js.ObjectStore(ctx, BucketObjects)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bus: object store %s: %w", BucketObjects, err)
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

// RequestBody returns the body of a request message: its data, or, when the
// Llm-Object header names an object, that object from BucketObjects.
func RequestBody(ctx context.Context, js jetstream.JetStream, h nats.Header, data []byte) ([]byte, error) {
	name := h.Get(HeaderObject)
	if name == "" {
		return data, nil
	}
	obs, err := js.ObjectStore(ctx, BucketObjects)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", BucketObjects, err)
	}
	b, err := obs.GetBytes(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("request object %q: %w", name, err)
	}
	return b, nil
}

// DeleteRequestObject deletes the object a request message references, if
// any; call it once the job's result is stored. A missing object is not an
// error.
func DeleteRequestObject(ctx context.Context, js jetstream.JetStream, h nats.Header) error {
	name := h.Get(HeaderObject)
	if name == "" {
		return nil
	}
	obs, err := js.ObjectStore(ctx, BucketObjects)
	if err != nil {
		return err
	}
	err = obs.Delete(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	return err
}
