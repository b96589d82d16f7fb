package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// sweepUnknown answers jobs queued for groups that no consumer serves: in a
// work-queue stream they would otherwise wait forever. It reads them with
// direct gets (no consumer, so it never overlaps a group's filter), answers
// unknown_group and deletes them. Jobs younger than UnknownGrace are left
// alone, since a worker serving their group may be starting.
func (w *Worker) sweepUnknown(ctx context.Context) {
	t := time.NewTicker(w.cfg.UnknownSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := w.sweepOnce(ctx); err != nil && ctx.Err() == nil {
				w.log.Debug("unknown-group sweep failed", slog.Any("error", err))
			}
		}
	}
}

func (w *Worker) sweepOnce(ctx context.Context) error {
	var errs []error
	for _, ns := range w.namespaces() {
		errs = append(errs, w.sweepStream(ctx, ns))
	}
	return errors.Join(errs...)
}

// sweepStream sweeps the request stream of one tenant.
func (w *Worker) sweepStream(ctx context.Context, ns bus.Subjects) error {
	s, err := w.js.Stream(ctx, ns.RequestStream())
	if err != nil {
		return err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(ns.Requests()))
	if err != nil {
		return err
	}
	if len(info.State.Subjects) == 0 {
		return nil
	}
	served := map[string]bool{}
	floors := map[string]uint64{} // ack floor of the consumer of a group subject
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		served[ci.Config.FilterSubject] = true
		for _, f := range ci.Config.FilterSubjects {
			served[f] = true
		}
		if f := ci.Config.FilterSubject; f != "" && len(ci.Config.FilterSubjects) == 0 {
			floors[f] = ci.AckFloor.Stream
		}
	}
	if err := lister.Err(); err != nil {
		return err
	}
	for subject := range info.State.Subjects {
		if !served[subject] && !w.consumerExists(ctx, ns, subject) {
			if err := w.answerUnknown(ctx, s, ns, subject, info.State.FirstSeq); err != nil {
				return err
			}
			continue
		}
		if floor := floors[subject]; floor >= info.State.FirstSeq {
			if err := w.clearAcked(ctx, s, ns, subject, info.State.FirstSeq, floor); err != nil {
				return err
			}
		}
	}
	return nil
}

// consumerExists asks for the consumer of the subject's group by name. In a
// cluster the stream's consumer list leaves out, without an error, a
// consumer whose leader did not answer in time (its node cut off, an
// election under way): its group's jobs are not orphans. Only a consumer
// the server says does not exist counts as absent.
func (w *Worker) consumerExists(ctx context.Context, ns bus.Subjects, subject string) bool {
	group, ok := ns.GroupOf(subject)
	if !ok || !bus.ValidGroup(group) {
		return false
	}
	_, err := w.js.Consumer(ctx, ns.RequestStream(), bus.ConsumerName(group))
	return !errors.Is(err, jetstream.ErrConsumerNotFound)
}

// clearAcked removes the jobs of subject that are at or below its
// consumer's ack floor: acked, so never delivered again, yet still in the
// work queue, because the server could not persist their removal (a full
// disk: after a restart they are back). A job whose result is stored is
// only deleted. One without (its reply prefix is not in the results stream,
// or an older worker let it run out of deliveries) is copied to the DLQ
// first: it cannot be told apart, and a copy loses nothing.
func (w *Worker) clearAcked(ctx context.Context, s jetstream.Stream, ns bus.Subjects, subject string, from, floor uint64) error {
	for seq := from; seq <= floor && ctx.Err() == nil; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Sequence > floor {
			return nil
		}
		group, _ := ns.GroupOf(subject)
		j := w.rawJob(m, ns, group)
		lctx, cancel := context.WithTimeout(ctx, lookupMax)
		res, err := j.lookupResult(lctx)
		cancel()
		if err != nil {
			// Cannot tell: a DLQ copy of an answered job would be a false
			// alarm. The next sweep looks again.
			return fmt.Errorf("stored result of job %s: %w", j.id, err)
		}
		if res == nil {
			reason := "found in the work queue at or below its consumer's ack floor without a stored result: answered with a reply prefix outside the results stream, or out of deliveries under an older worker"
			if err := j.deadLetter(bus.CodeInternal, reason); err != nil {
				return err
			}
		}
		w.log.Info("acked job left in the work queue removed", slog.String("job", j.id), slog.Uint64("seq", m.Sequence))
		if err := s.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return err
		}
		seq = m.Sequence + 1
	}
	return ctx.Err()
}

func (w *Worker) answerUnknown(ctx context.Context, s jetstream.Stream, ns bus.Subjects, subject string, from uint64) error {
	for seq := from; ctx.Err() == nil; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if w.cfg.Now().Sub(m.Time) < w.cfg.UnknownGrace {
			return nil
		}
		group, _ := ns.GroupOf(subject)
		msg := fmt.Sprintf("no worker serves group %q", group)
		if !bus.ValidGroup(group) {
			msg = fmt.Sprintf("subject %q does not name a valid group (one token of [a-z0-9_-])", subject)
		}
		w.answerRaw(m, ns, group, bus.CodeUnknownGroup, msg)
		if err := s.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			w.log.Debug("delete of unknown-group job failed", slog.Uint64("seq", m.Sequence), slog.Any("error", err))
		}
		seq = m.Sequence + 1
	}
	return ctx.Err()
}

// rawJob is the job of a stored message that no consumer delivered: enough
// of it (id, reply, encoding) to answer it or copy it to the DLQ.
func (w *Worker) rawJob(m *jetstream.RawStreamMsg, ns bus.Subjects, group string) *job {
	j := &job{w: w, group: group, picked: w.cfg.Now(), published: m.Time, raw: m, stream: ns.RequestStream(), seq: m.Sequence}
	// Best effort: the id and reply are all it needs.
	j.ticket = w.rules.decode(inbound{ns: ns, subject: m.Subject, header: m.Header, data: m.Data, seq: m.Sequence})
	return j
}

// answerRaw publishes an error result for a stored message that no consumer
// delivered. A message that names no id and no reply cannot be answered.
func (w *Worker) answerRaw(m *jetstream.RawStreamMsg, ns bus.Subjects, group string, code bus.ErrorCode, text string) {
	j := w.rawJob(m, ns, group)
	w.log.Warn("job rejected", slog.String("job", j.id), slog.String("subject", m.Subject), slog.String("code", string(code)))
	if !j.answer {
		return
	}
	if err := j.publishResult(j.errorResult(code, text, false)); err != nil {
		w.log.Warn("result publish failed", slog.String("job", j.id), slog.Any("error", err))
	}
}
