package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/pkg/bus"
)

// tenantModels is the workers' model file of TestTenantIsolation: three
// tenants (mallory is the attacker) and no anonymous jobs.
const tenantModels = `
unknown_tenants: deny
groups:
  tenants:
    deployments:
      - name: mock-tenants
        provider: mock
        model: mock-1
        mock: {tokens: 10, chunk_delay: 20ms}
tenants:
  acme: {}
  globex: {}
  mallory: {}
`

// TestTenantIsolation: a 3-node cluster with the example's authentication
// and permissions, 3 workers, tenants acme and globex running jobs
// (some with large requests) while mallory publishes, throughout, jobs
// aimed at their results (forged reply prefixes), at the server's API
// (a reply prefix that would purge streams) and at their large requests
// (Llm-Object naming their jobs), and tries to read and purge their
// buckets directly. Every acme and globex job gets exactly its own result,
// nothing of theirs reaches another tenant, every mallory job is refused,
// and the purge targets keep their messages.
func TestTenantIsolation(t *testing.T) {
	start := time.Now()
	require.NoError(t, images(t), "integration suite setup (Docker and image builds)")
	c := startFleet(t, fleetSpec{
		models: tenantModels, groups: []string{"tenants"},
		natsAuth: tenantAuth(t), user: "operator", password: "operator-dev",
		tenants: []string{"acme", "globex", "mallory"},
		workerEnv: func(int) map[string]string {
			return map[string]string{"NATS_USER": "worker", "NATS_PASSWORD": "worker-dev"}
		},
	})
	t.Logf("fleet up in %s", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, tn := range []string{"acme", "globex", "mallory"} {
		eventually(t, ctx, 30*time.Second, "consumer of "+tn, func(ctx context.Context) error {
			_, err := c.js.Consumer(ctx, bus.Subjects{Tenant: tn}.RequestStream(), bus.ConsumerName("tenants"))
			return err
		})
	}
	// The purge targets: "$JS.API.STREAM.PURGE" + ".events" / ".result".
	for _, name := range []string{"events", "result"} {
		_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"canary." + name}, Replicas: natsNodes})
		require.NoError(t, err)
		_, err = c.js.Publish(ctx, "canary."+name, []byte("keep me"))
		require.NoError(t, err)
	}
	acme, globex, mallory := c.connectAs(t, "acme"), c.connectAs(t, "globex"), c.connectAs(t, "mallory")

	// Everything that reaches each tenant's reply namespace, as the
	// operator sees it: whose job each result names.
	type seen struct {
		mu      sync.Mutex
		results map[string]int // job id -> results
		foreign []string
	}
	watch := func(tenant string, own func(id string) bool) *seen {
		s := &seen{results: map[string]int{}}
		sub, err := c.nc.Subscribe(bus.Subjects{Tenant: tenant}.Reply("*")+".result", func(m *nats.Msg) {
			var r bus.Result
			err := bus.Detect(m.Header, m.Data).Unmarshal(m.Data, &r)
			s.mu.Lock()
			defer s.mu.Unlock()
			if err != nil || !own(r.ID) {
				s.foreign = append(s.foreign, m.Subject)
				return
			}
			s.results[r.ID]++
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		return s
	}
	isJob := func(prefix string) func(string) bool {
		return func(id string) bool { return strings.HasPrefix(id, prefix) }
	}
	acmeSeen, globexSeen := watch("acme", isJob("acme-")), watch("globex", isJob("globex-"))
	require.NoError(t, c.nc.Flush())

	const perTenant = 200 // jobs of each victim tenant; every 20th is large
	big := strings.Repeat("a large prompt ", 80_000)
	run := func(tc *authConn, tenant string) (ok, failed int, errs []string) {
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for i := range perTenant {
			g.Go(func() error {
				id := fmt.Sprintf("%s-%d", tenant, i)
				text := "hello from " + tenant
				if i%20 == 0 {
					text = big
				}
				res, err := tc.c.Submit(gctx, "tenants", &bus.Request{ID: id, Messages: []bus.Message{{Role: "user", Content: bus.Text(text)}}})
				mu.Lock()
				defer mu.Unlock()
				if err != nil || res.ID != id || res.Status != bus.StatusOK {
					failed++
					errs = append(errs, fmt.Sprintf("%s: %v", id, err))
					return nil
				}
				ok++
				return nil
			})
		}
		_ = g.Wait()
		return ok, failed, errs
	}

	// mallory, until the victims are done.
	attackCtx, stopAttacks := context.WithCancel(ctx)
	var attacks, refused atomic.Int64
	malloryResults := map[string]string{}
	var mrMu sync.Mutex
	msub, err := mallory.nc.Subscribe(bus.Subjects{Tenant: "mallory"}.Reply("*")+".result", func(m *nats.Msg) {
		var r bus.Result
		if err := bus.Detect(m.Header, m.Data).Unmarshal(m.Data, &r); err == nil {
			mrMu.Lock()
			malloryResults[r.ID] = string(r.Status) + ":" + codeOf(&r)
			mrMu.Unlock()
		}
	})
	require.NoError(t, err)
	defer msub.Unsubscribe() //nolint:errcheck // test end
	attackDone := make(chan struct{})
	go func() {
		defer close(attackDone)
		for i := 0; attackCtx.Err() == nil; i++ {
			victim := []string{"acme", "globex"}[i%2]
			vid := fmt.Sprintf("%s-%d", victim, (i/2)%perTenant)
			id := fmt.Sprintf("m-%d", i)
			h := nats.Header{bus.HeaderMsgID: {id}}
			req := &bus.Request{ID: id, Messages: []bus.Message{{Role: "user", Content: bus.Text("forged answer")}}}
			kind := i % 3
			if i%16 == 15 {
				kind = 3
			}
			switch kind {
			case 0: // forge the victim's result
				h.Set(bus.HeaderReply, bus.Subjects{Tenant: victim}.Reply(vid))
			case 1: // purge streams with the worker's rights
				h.Set(bus.HeaderReply, "$JS.API.STREAM.PURGE")
			case 2: // steal the victim's large request (by its id)
				h.Set(bus.HeaderObject, vid)
				req.Messages = nil
			case 3: // and directly: read, purge the victim's buckets, subscribe to its results
				sctx, scancel := context.WithTimeout(attackCtx, 300*time.Millisecond)
				_, _ = mallory.nc.RequestWithContext(sctx, "$JS.API.STREAM.PURGE.OBJ_LLM_OBJECTS_"+victim, nil)
				_, _ = mallory.nc.RequestWithContext(sctx, "$JS.API.DIRECT.GET.LLM_RESULTS.llm.t."+victim+".res."+vid+".result", nil)
				scancel()
				if sub, err := mallory.nc.Subscribe(bus.Subjects{Tenant: victim}.Reply(">"), func(*nats.Msg) {
					mrMu.Lock()
					malloryResults["stolen"] = "read a victim's subject"
					mrMu.Unlock()
				}); err == nil {
					_ = mallory.nc.Flush()
					_ = sub.Unsubscribe()
				}
				_ = mallory.nc.Publish(bus.Subjects{Tenant: victim}.Reply(vid)+".result", []byte(`{"id":"`+vid+`","status":"ok","text":"forged"}`))
				continue
			}
			m := nats.NewMsg(bus.Subjects{Tenant: "mallory"}.Request("tenants"))
			m.Header = h
			m.Header.Set(bus.HeaderContentType, bus.JSON.ContentType())
			m.Data, _ = bus.JSON.Marshal(req)
			pctx, pcancel := context.WithTimeout(attackCtx, 5*time.Second)
			if _, err := mallory.js.PublishMsg(pctx, m); err == nil {
				attacks.Add(1)
			}
			pcancel()
		}
	}()

	var wg sync.WaitGroup
	var aOK, aFail, gOK, gFail int
	var aErrs, gErrs []string
	wg.Go(func() { aOK, aFail, aErrs = run(acme, "acme") })
	wg.Go(func() { gOK, gFail, gErrs = run(globex, "globex") })
	wg.Wait()
	stopAttacks()
	<-attackDone

	// Every mallory job that was queued is answered invalid_request.
	eventually(t, ctx, 30*time.Second, "an answer to every attack job", func(context.Context) error {
		mrMu.Lock()
		defer mrMu.Unlock()
		n := 0
		for id := range malloryResults {
			if strings.HasPrefix(id, "m-") {
				n++
			}
		}
		if int64(n) < attacks.Load() {
			return fmt.Errorf("%d of %d attack jobs answered", n, attacks.Load())
		}
		return nil
	})
	mrMu.Lock()
	var notRefused []string
	for id, v := range malloryResults {
		if !strings.HasPrefix(id, "m-") || v != "error:"+string(bus.CodeInvalidRequest) {
			notRefused = append(notRefused, id+"="+v)
		} else {
			refused.Add(1)
		}
	}
	mrMu.Unlock()
	time.Sleep(500 * time.Millisecond) // asserting absences: let anything late arrive

	lost := func(s *seen, prefix string) (lost, dup []string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i := range perTenant {
			id := fmt.Sprintf("%s-%d", prefix, i)
			switch n := s.results[id]; {
			case n == 0:
				lost = append(lost, id)
			case n > 1:
				dup = append(dup, id)
			}
		}
		return lost, dup
	}
	aLost, aDup := lost(acmeSeen, "acme")
	gLost, gDup := lost(globexSeen, "globex")
	c.report(t, fmt.Sprintf("tenant isolation: acme %d ok %d failed, globex %d ok %d failed; mallory %d attack jobs (%d refused invalid_request), %d of its publishes and subscriptions denied by NATS; foreign results in acme's namespace %d, globex's %d",
		aOK, aFail, gOK, gFail, attacks.Load(), refused.Load(), mallory.denied.Load(), len(acmeSeen.foreign), len(globexSeen.foreign)))

	require.Empty(t, aErrs, "acme's jobs")
	require.Empty(t, gErrs, "globex's jobs")
	require.Empty(t, aLost, "acme jobs without a result")
	require.Empty(t, gLost, "globex jobs without a result")
	require.Empty(t, aDup, "acme jobs with two results")
	require.Empty(t, gDup, "globex jobs with two results")
	require.Empty(t, acmeSeen.foreign, "results in acme's namespace that are not acme's jobs'")
	require.Empty(t, globexSeen.foreign, "results in globex's namespace that are not globex's jobs'")
	require.Empty(t, notRefused, "mallory's jobs that were not refused (or a victim's subject read)")
	require.Positive(t, attacks.Load())
	require.Positive(t, mallory.denied.Load(), "the server denied mallory's direct attempts")
	require.Zero(t, acme.c.Dropped()+globex.c.Dropped(), "the victims' clients dropped foreign messages")
	for _, name := range []string{"events", "result"} {
		s, err := c.js.Stream(ctx, name)
		require.NoError(t, err)
		require.EqualValues(t, 1, s.CachedInfo().State.Msgs, "stream %s was purged", name)
	}
	// The victims' stored results are their own.
	for _, v := range []*authConn{acme, globex} {
		tenant := v.c.Subjects().Tenant
		r, err := v.c.StoredResult(ctx, v.c.Subjects().Reply(tenant+"-1"))
		require.NoError(t, err)
		require.NotNil(t, r)
		require.Equal(t, tenant+"-1", r.ID)
	}
}

func codeOf(r *bus.Result) string {
	if r.Error == nil {
		return ""
	}
	return string(r.Error.Code)
}
