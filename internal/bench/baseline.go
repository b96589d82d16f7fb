package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The raw JetStream baseline: the same message work as a Switchyard job with
// nothing else. A client publishes a request to a work-queue stream and
// waits on <reply>.>; a consumer takes it, publishes Tokens chunk messages
// with core NATS and one result stored in a limits stream (awaiting the
// PubAck), then acks. Streams are file-backed with dedupe windows, like
// Switchyard's.
const (
	BaselineRequests = "BENCH_REQUESTS"
	BaselineResults  = "BENCH_RESULTS"
	baselineConsumer = "bench-baseline"
	baselineReq      = "bench.req.work"
	baselineRes      = "bench.res."
)

// ProvisionBaseline creates (or resets) the baseline's streams and consumer.
func ProvisionBaseline(ctx context.Context, js jetstream.JetStream) error {
	for _, name := range []string{BaselineRequests, BaselineResults} {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("bench: reset %s: %w", name, err)
		}
	}
	streams := []jetstream.StreamConfig{
		{Name: BaselineRequests, Subjects: []string{"bench.req.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute},
		{Name: BaselineResults, Subjects: []string{baselineRes + "*.result"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, MaxAge: time.Hour, Duplicates: time.Hour},
	}
	for _, sc := range streams {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			return fmt.Errorf("bench: create %s: %w", sc.Name, err)
		}
	}
	_, err := js.CreateOrUpdateConsumer(ctx, BaselineRequests, jetstream.ConsumerConfig{
		Durable: baselineConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		MaxDeliver: 5, MaxAckPending: 20000, MaxWaiting: 4096,
	})
	if err != nil {
		return fmt.Errorf("bench: baseline consumer: %w", err)
	}
	return nil
}

// ServeBaseline consumes baseline requests with up to concurrency jobs in
// flight until ctx ends, answering each with tokens chunks and a stored
// result.
func ServeBaseline(ctx context.Context, nc *nats.Conn, concurrency, tokens int) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, BaselineRequests, baselineConsumer)
	if err != nil {
		return fmt.Errorf("bench: baseline consumer: %w", err)
	}
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	cc, err := cons.Consume(func(m jetstream.Msg) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			handleBaseline(ctx, nc, js, m, tokens)
		})
	}, jetstream.PullMaxMessages(concurrency))
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Stop()
	wg.Wait()
	return nil
}

var chunkWords = strings.Fields("the quick brown fox jumps over the lazy dog while yard engines shunt")

func handleBaseline(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, m jetstream.Msg, tokens int) {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	reply := baselineRes + id
	events := reply + ".events"
	var text []byte
	buf := make([]byte, 0, 128)
	for k := 1; k <= tokens; k++ {
		w := chunkWords[k%len(chunkWords)] + " "
		text = append(text, w...)
		buf = append(buf[:0], `{"id":"`...)
		buf = append(buf, id...)
		buf = append(buf, `","type":"chunk","seq":`...)
		buf = strconv.AppendInt(buf, int64(k), 10)
		buf = append(buf, `,"attempt":1,"delta":"`...)
		buf = append(buf, w...)
		buf = append(buf, `"}`...)
		if err := nc.Publish(events, buf); err != nil {
			_ = m.Nak()
			return
		}
	}
	res := append([]byte(`{"id":"`+id+`","status":"ok","text":"`), text...)
	res = append(res, `","finish_reason":"stop","usage":{"prompt_tokens":128,"completion_tokens":`...)
	res = strconv.AppendInt(res, int64(tokens), 10)
	res = append(res, `}}`...)
	rm := nats.NewMsg(reply + ".result")
	rm.Header.Set(jetstream.MsgIDHeader, id)
	rm.Data = res
	if _, err := js.PublishMsg(ctx, rm); err != nil {
		_ = m.Nak()
		return
	}
	_ = m.Ack()
}

// BaselineJob returns a JobFunc for the baseline client: it subscribes to
// the job's reply subjects, publishes a request of promptBytes bytes and
// waits for the result, timing the first chunk.
func BaselineJob(nc *nats.Conn, promptBytes int) (JobFunc, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	body := []byte(Prompt(promptBytes))
	return func(ctx context.Context, _ int) Outcome {
		id := uuid.Must(uuid.NewV7()).String()
		reply := baselineRes + id
		t0 := time.Now()
		// A channel sized for a job's messages (tokens + 1), not
		// SubscribeSync's 64k-entry one, which costs 512 KiB per job.
		ch := make(chan *nats.Msg, 256)
		sub, err := nc.ChanSubscribe(reply+".>", ch)
		if err != nil {
			return Outcome{Code: CodeTransport}
		}
		defer sub.Unsubscribe()
		m := nats.NewMsg(baselineReq)
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Data = body
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return Outcome{Code: codeOf(err)}
		}
		var o Outcome
		for {
			var msg *nats.Msg
			select {
			case msg = <-ch:
			case <-ctx.Done():
				o.Code = codeOf(ctx.Err())
				return o
			}
			if strings.HasSuffix(msg.Subject, ".result") {
				return o
			}
			if o.FirstChunk == 0 {
				o.FirstChunk = time.Since(t0)
			}
		}
	}, nil
}
