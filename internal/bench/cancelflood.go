package bench

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard/switchyard/pkg/bus"
)

// floodTenant is the tenant whose cancel subject section e floods.
const floodTenant = "flood"

// floodRounds is the number of slices section e's flood is sent in, each
// followed by a reading of the worker's heap.
const floodRounds = 4

// cancelFlood is section e: Cancels cancels for random job ids, published
// as fast as the server takes them on one tenant's cancel subject (a core
// message each, as a hostile tenant would, with no marker), against one
// worker, in floodRounds slices. After each slice the worker's heap is
// read two ways: the heap in use from its /metrics (which includes garbage
// not yet collected), and the heap its last garbage collection found live
// (GODEBUG=gctrace=1). Bounded state shows as a live heap that stays flat
// from slice to slice. A running job of the same tenant ends each slice:
// its cancel, sent on the same connection after the slice, is confirmed by
// the worker only once it has read every cancel before it.
func (c *compare) cancelFlood(ctx context.Context) error {
	n := c.cfg.Cancels
	fmt.Fprintf(c.out, "\n== (e) cancel flood: %d cancels for random ids on tenant %q's cancel subject, one worker (CancelMemo: 32,768 markers per tenant)\n", n, floodTenant)
	models := fmt.Sprintf(`
groups:
  slow:
    deployments:
      - name: mock-slow
        provider: mock
        model: mock-1
        mock: {tokens: 100000, chunk_delay: 100ms}
tenants:
  %s: {}
`, floodTenant)
	ns := bus.Subjects{Tenant: floodTenant}
	p, metrics, err := c.startWorkerMetrics(ctx, "worker-flood", models, 16, ns, []string{"GODEBUG=gctrace=1"}, "slow")
	if err != nil {
		return err
	}
	defer p.Stop(30 * time.Second)
	client, err := bus.NewClient(c.nc, bus.WithTenant(floodTenant))
	if err != nil {
		return err
	}
	// One running job per slice, each the barrier of its slice.
	barriers := make([]*bus.Job, floodRounds)
	for i := range barriers {
		job, err := client.Publish(ctx, "slow", &bus.Request{ID: fmt.Sprintf("flood-barrier-%d", i), Messages: []bus.Message{{Role: "user", Content: bus.Text("hold on")}}})
		if err != nil {
			return err
		}
		defer job.Close() //nolint:errcheck // a subscription; the bench ends
		if ev, _, err := job.Next(ctx); err != nil || ev == nil {
			return fmt.Errorf("bench: barrier job %d did not start: %v", i, err)
		}
		barriers[i] = job
	}
	reading := func(label string) error {
		inUse, err := lowestHeap(ctx, metrics, 3, 200*time.Millisecond)
		if err != nil {
			return err
		}
		live, gcs := lastGCLive(p.Output())
		fmt.Fprintf(c.out, "  %-22s heap in use %9s   live at last GC (#%d) %4d MB\n", label, mib(int64(inUse)), gcs, live)
		return nil
	}
	if err := reading("before"); err != nil {
		return err
	}
	prefix := ns.Cancel("")
	began := time.Now()
	for r := range floodRounds {
		for i := r * n / floodRounds; i < (r+1)*n/floodRounds; i++ {
			if err := c.nc.Publish(prefix+uuid.NewString(), nil); err != nil {
				return err
			}
			if i%20_000 == 19_999 {
				// Paced to the server, so that the worker's subscription
				// does not fall behind as a slow consumer.
				if err := c.nc.FlushTimeout(30 * time.Second); err != nil {
					return err
				}
			}
		}
		running, err := client.CancelConfirmed(ctx, barriers[r].ID, 2*time.Minute)
		if err != nil {
			return err
		}
		if !running {
			return fmt.Errorf("bench: the worker did not confirm barrier job %d's cancel (output: %s)", r, strings.TrimSpace(p.Output()))
		}
		if err := reading(fmt.Sprintf("after %d cancels", (r+1)*n/floodRounds)); err != nil {
			return err
		}
	}
	rss, _ := p.PeakRSS()
	fmt.Fprintf(c.out, "  %d cancels sent and read by the worker in %s; worker peak RSS %s\n", n, time.Since(began).Round(time.Millisecond), mib(rss))
	return nil
}

// gcTrace matches a gctrace line's heap sizes: before, after, live (MB).
var gcTrace = regexp.MustCompile(`(?m)^gc (\d+) @.* (\d+)->(\d+)->(\d+) MB`)

// lastGCLive returns the live heap (MB) that the last garbage collection
// in a GODEBUG=gctrace=1 output found, and that collection's number.
func lastGCLive(out string) (liveMB, gc int) {
	all := gcTrace.FindAllStringSubmatch(out, -1)
	if len(all) == 0 {
		return -1, 0
	}
	last := all[len(all)-1]
	gc, _ = strconv.Atoi(last[1])
	liveMB, _ = strconv.Atoi(last[4])
	return liveMB, gc
}

// lowestHeap reads the heap in use from the worker's /metrics n times,
// every gap, and returns the lowest reading.
func lowestHeap(ctx context.Context, addr string, n int, gap time.Duration) (float64, error) {
	low := -1.0
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(gap):
			}
		}
		h, _, err := scrapeRuntime(ctx, addr)
		if err != nil {
			return 0, err
		}
		if low < 0 || h < low {
			low = h
		}
	}
	return low, nil
}
