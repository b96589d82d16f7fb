package worker_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats.go v1.55.0 (the newest here): ObjectStore.Put publishes its
		// chunks through a JetStream context of its own, whose first async
		// publish starts resetPendingAcksOnReconnect, and removes that
		// context's status channel (cleanupReplySub) when it returns. When
		// the removal wins the race with the goroutine's start, the
		// goroutine reads the nil channel and blocks forever: one goroutine
		// per unlucky Put, in any process that stores large results (seen
		// once in go test -count=5 ./internal/worker/). Not ours to fix.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"),
	)
}
