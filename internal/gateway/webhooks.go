package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchyard/switchyard/pkg/bus"
)

// Webhook deliveries live in JetStream, not in a gateway's memory: a
// durable consumer on the results stream (created when the first job with a
// webhook is accepted) hands every result to one of the running gateways;
// results of async jobs with a pending webhook are delivered, the others
// acked. A failed call is redelivered with backoff (NakWithDelay) up to
// webhookAttempts times; a gateway that dies mid-call leaves the message
// unacked, and another gateway (or the same one restarted) delivers it after
// AckWait. The job's record in BucketJobs keeps the delivery's state, so a
// delivered webhook is not called again. Delivery is at least once: a crash
// between the receiver's 2xx and the record's update calls it twice, with
// the same webhook-id, which Standard Webhooks receivers use to deduplicate.

// hookConsumer is the durable consumer shared by all gateways.
const hookConsumer = "gateway_webhooks"

// webhookAttempts bounds the calls of one webhook.
const webhookAttempts = 8

type webhooks struct {
	g       *Gateway
	http    *http.Client
	ensured bool
	mu      sync.Mutex
	wake    chan struct{} // ensure created the consumer: start consuming now
	sem     chan struct{} // deliveries in flight
	// RetryBase is the first retry's delay; later ones grow 4x, to an hour.
	retryBase time.Duration
}

func newWebhooks(g *Gateway) *webhooks {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !g.cfg.WebhookAllowPrivate {
		d.Control = refusePrivate
	}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute, TLSHandshakeTimeout: 5 * time.Second}
	return &webhooks{
		g: g,
		http: &http.Client{Transport: tr, Timeout: g.cfg.WebhookTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		wake:      make(chan struct{}, 1),
		sem:       make(chan struct{}, 16),
		retryBase: g.cfg.webhookRetryBase,
	}
}

// refusePrivate refuses to dial loopback, private, link-local and
// unspecified addresses (checked on the resolved address, so DNS cannot
// point a webhook into the operator's network).
func refusePrivate(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast() {
		return fmt.Errorf("webhook address %s is not public (set SWITCHYARD_WEBHOOK_ALLOW_PRIVATE to allow it)", host)
	}
	return nil
}

// consumerConfig filters the results stream's result subjects (anonymous
// and, once provisioned, the tenants').
func (h *webhooks) consumerConfig(ctx context.Context) (jetstream.ConsumerConfig, error) {
	s, err := h.g.js.Stream(ctx, bus.StreamResults)
	if err != nil {
		return jetstream.ConsumerConfig{}, err
	}
	var filters []string
	for _, subj := range s.CachedInfo().Config.Subjects {
		if strings.HasSuffix(subj, ".result") {
			filters = append(filters, subj)
		}
	}
	return jetstream.ConsumerConfig{
		Durable:        hookConsumer,
		Description:    "Switchyard gateway: webhook deliveries of async jobs",
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        2*h.g.cfg.WebhookTimeout + 5*time.Second,
		MaxDeliver:     webhookAttempts,
		MaxAckPending:  1024,
		Replicas:       h.g.cfg.Replicas,
	}, nil
}

// ensure creates the delivery consumer (once per process) and wakes run.
func (h *webhooks) ensure(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ensured {
		return nil
	}
	cfg, err := h.consumerConfig(ctx)
	if err != nil {
		return err
	}
	if _, err := h.g.js.CreateOrUpdateConsumer(ctx, bus.StreamResults, cfg); err != nil {
		return fmt.Errorf("gateway: webhook consumer: %w", err)
	}
	h.ensured = true
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return nil
}

// run consumes deliveries once the consumer exists, until ctx ends. A
// consumer deleted under it (by an operator, or lost with the server's
// state) is made again.
func (h *webhooks) run(ctx context.Context) error {
	poll := time.NewTicker(2 * time.Second)
	defer poll.Stop()
	var gone time.Time // when the consumer this gateway consumed went away
	for {
		cons, err := h.g.js.Consumer(ctx, bus.StreamResults, hookConsumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) && !gone.IsZero() {
			// From a while before it went, so that no result of the gap is
			// missed: a result delivered already is acked without a call
			// (its job's record says delivered).
			cons, err = h.recreate(ctx, gone.Add(-time.Minute))
		}
		if err == nil {
			// The results stream may have gained subjects (tenants'
			// results) since the consumer was made: follow them.
			cur := cons.CachedInfo().Config
			if cfg, cerr := h.consumerConfig(ctx); cerr == nil && !slices.Equal(cfg.FilterSubjects, cur.FilterSubjects) {
				cfg.DeliverPolicy, cfg.OptStartTime = cur.DeliverPolicy, cur.OptStartTime // not updatable
				if c, uerr := h.g.js.CreateOrUpdateConsumer(ctx, bus.StreamResults, cfg); uerr == nil {
					cons = c
				}
			}
			if err := h.consume(ctx, cons); !errors.Is(err, errConsumerGone) {
				return err
			}
			h.g.log.Warn("webhook consumer deleted; making it again")
			gone = time.Now()
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			h.g.log.Warn("webhook consumer lookup failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-h.wake:
		case <-poll.C:
		}
	}
}

// recreate makes the delivery consumer again, delivering the results stored
// since from; another gateway may have made it first.
func (h *webhooks) recreate(ctx context.Context, from time.Time) (jetstream.Consumer, error) {
	cfg, err := h.consumerConfig(ctx)
	if err != nil {
		return nil, err
	}
	cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	cons, err := h.g.js.CreateConsumer(ctx, bus.StreamResults, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return h.g.js.Consumer(ctx, bus.StreamResults, hookConsumer)
	}
	return cons, err
}

var errConsumerGone = errors.New("gateway: webhook consumer deleted")

// consume delivers until ctx ends (nil) or the consumer is deleted
// (errConsumerGone).
func (h *webhooks) consume(ctx context.Context, cons jetstream.Consumer) error {
	var wg sync.WaitGroup
	cc, err := cons.Consume(func(m jetstream.Msg) {
		tenant, jobID, ok := h.g.cfg.Subjects.ParseResult(m.Subject())
		if !ok || !strings.HasPrefix(jobID, asyncJobPrefix) {
			_ = m.Ack()
			return
		}
		h.sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-h.sem }()
			h.deliver(ctx, m, tenant, jobID)
		})
	}, jetstream.PullMaxMessages(64))
	if err != nil {
		return fmt.Errorf("gateway: webhook consumer: %w", err)
	}
	// Consume stops on its own when the server says the consumer was
	// deleted.
	select {
	case <-ctx.Done():
	case <-cc.Closed():
	}
	cc.Stop()
	wg.Wait()
	if ctx.Err() == nil {
		return errConsumerGone
	}
	return nil
}

// webhookEvent is the payload, in Standard Webhooks' recommended shape.
type webhookEvent struct {
	Type      string   `json:"type"` // job.succeeded | job.failed | job.cancelled
	Timestamp string   `json:"timestamp"`
	Data      *jobView `json:"data"`
}

func (h *webhooks) deliver(ctx context.Context, m jetstream.Msg, tenant, jobID string) {
	log := h.g.log.With(slog.String("job", jobID))
	rec, rev, err := h.g.jobRecord(ctx, tenant, jobID)
	if err != nil {
		log.Warn("webhook: job record unreadable; retrying", slog.Any("error", err))
		_ = m.NakWithDelay(h.retryBase)
		return
	}
	if rec == nil || rec.Webhook == nil || rec.Webhook.Status != hookPending {
		_ = m.Ack()
		return
	}
	client, err := h.g.client(tenant)
	if err != nil {
		log.Error("webhook: no client for the job's tenant; not delivered", slog.Any("error", err))
		_ = m.Term()
		return
	}
	// DecodeResult: a result too large for one message is a summary here,
	// the whole of it in the tenant's Object Store.
	res, err := client.DecodeResult(ctx, m.Headers(), m.Data())
	switch {
	case errors.Is(err, bus.ErrResultObject):
		log.Error("webhook: result names another job's object; not delivered", slog.Any("error", err))
		_ = m.Term()
		return
	case err != nil && ctx.Err() == nil:
		log.Warn("webhook: result unreadable; retrying", slog.Any("error", err))
		_ = m.NakWithDelay(h.retryBase)
		return
	case err != nil:
		return // shutting down: redelivered to a gateway
	}
	view := h.g.viewJob(rec, res)
	attempt := 1
	if md, err := m.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	callErr := h.call(ctx, tenant, rec.Webhook.URL, jobID, &webhookEvent{Type: "job." + view.Status, Data: view})
	if ctx.Err() != nil {
		return // shutting down: the message is redelivered to a gateway
	}
	rec.Webhook.Attempts = attempt
	switch {
	case callErr == nil:
		now := h.g.now().UTC()
		rec.Webhook.Status, rec.Webhook.LastError, rec.Webhook.DeliveredAt = hookDelivered, "", &now
		h.g.met.webhooks.WithLabelValues("delivered").Inc()
	case attempt >= webhookAttempts:
		rec.Webhook.Status, rec.Webhook.LastError = hookFailed, callErr.Error()
		h.g.met.webhooks.WithLabelValues("failed").Inc()
		log.Warn("webhook: giving up", slog.Int("attempts", attempt), slog.Any("error", callErr))
	default:
		rec.Webhook.LastError = callErr.Error()
		h.g.met.webhooks.WithLabelValues("retry").Inc()
	}
	if err := h.save(ctx, tenant, rec, rev); err != nil {
		log.Warn("webhook: delivery state not saved", slog.Any("error", err))
	}
	switch {
	case callErr == nil:
		_ = m.Ack()
	case attempt >= webhookAttempts:
		_ = m.Term()
	default:
		_ = m.NakWithDelay(h.backoff(attempt))
	}
}

func (h *webhooks) backoff(attempt int) time.Duration {
	d := h.retryBase
	for range attempt - 1 {
		d *= 4
		if d >= time.Hour {
			return time.Hour
		}
	}
	return d
}

func (h *webhooks) save(ctx context.Context, tenant string, rec *jobRecord, rev uint64) error {
	kv, err := h.g.store.kv(ctx, BucketJobs)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(rec) // plain struct
	_, err = kv.Update(ctx, storeKey(tenant, rec.ID), b, rev)
	return err
}

// call POSTs one signed delivery; only a 2xx is success.
func (h *webhooks) call(ctx context.Context, tenant, url, jobID string, ev *webhookEvent) error {
	secret, err := h.g.webhookKey(ctx, tenant)
	if err != nil {
		return err
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	now := h.g.now()
	ev.Timestamp = now.UTC().Format(time.RFC3339)
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	msgID := "msg_" + jobID // the same on every retry, as the spec asks
	sig, err := wh.Sign(msgID, now, body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Switchyard-Webhooks/1")
	req.Header.Set(standardwebhooks.HeaderWebhookID, msgID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := h.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()                                       //nolint:errcheck // read-only
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// webhookKey returns a tenant's signing secret (whsec_...), creating it on
// first use. All gateways share it through BucketSecrets.
func (g *Gateway) webhookKey(ctx context.Context, tenant string) (string, error) {
	return g.sharedSecret(ctx, "webhook."+tenantToken(tenant), "whsec_")
}

// sharedSecret returns the secret stored under key in BucketSecrets
// (prefix + 32 random bytes, base64), creating it on first use: the first
// gateway to create it wins and the others read it.
func (g *Gateway) sharedSecret(ctx context.Context, key, prefix string) (string, error) {
	kv, err := g.store.kv(ctx, BucketSecrets)
	if err != nil {
		return "", err
	}
	if e, err := kv.Get(ctx, key); err == nil {
		return string(e.Value()), nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", err
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	secret := prefix + base64.StdEncoding.EncodeToString(raw)
	if _, err := kv.Create(ctx, key, []byte(secret)); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", err
		}
		e, err := kv.Get(ctx, key) // another gateway was first
		if err != nil {
			return "", err
		}
		return string(e.Value()), nil
	}
	return secret, nil
}

// webhookSecret answers the tenant's signing secret, for its receivers to
// verify deliveries with.
func (g *Gateway) webhookSecret(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	s, err := g.webhookKey(r.Context(), id.Tenant)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"object": "webhook_secret", "secret": s})
}
