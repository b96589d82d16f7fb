package gateway_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats.go's and net/http's pooled connections wind down on their own.
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// nats.go v1.55.0: ObjectStore.Put's own JetStream context clears
		// its status channel when Put returns, racing the
		// resetPendingAcksOnReconnect goroutine its first async publish
		// started, which then blocks on the nil channel for ever (seen once
		// here in a TestBatch run; the gateway Puts every uploaded file and
		// batch output). Upstream, as internal/worker's TestMain says.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"),
	)
}
