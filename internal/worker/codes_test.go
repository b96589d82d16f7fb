package worker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// withRouter starts a worker serving groups of r.
func withRouter(t *testing.T, groups ...policy.Group) *env {
	t.Helper()
	e := setup(t, opts{noStart: true})
	r, err := policy.NewRouter(groups)
	require.NoError(t, err)
	e.router = r
	e.startWorker(worker.Config{Groups: r.Groups()})
	return e
}

// retrying are group options with millisecond backoffs that retry even a
// bad request.
func retrying(maxRetries int, fallbacks ...string) policy.GroupOptions {
	o := quick(maxRetries, policy.BreakerOptions{})
	o.Fallbacks = fallbacks
	o.OnError = map[string]policy.Action{"bad_request": policy.ActionRetry}
	return o
}

// The retry event and the result's attempt for the same failure carry the
// same wire code (they used to say "unavailable" and "provider_unavailable").
func TestRetryEventAndAttemptShareTheWireCode(t *testing.T) {
	t.Parallel()
	for kind, code := range map[string]bus.ErrorCode{
		"unavailable": bus.CodeProviderUnavailable,
		"bad_request": bus.CodeInvalidRequest,
		"timeout":     bus.CodeTimeout,
	} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			m := mock.New(mock.Config{Script: []mock.Step{{Error: kind}}})
			e := withRouter(t, policy.Group{Name: "demo", Options: retrying(1), Deployments: []policy.Deployment{{Name: "a", Model: "m", Provider: m}}})
			job, err := e.client.Publish(ctxT(t, 10*time.Second), "demo", userReq("codes-"+kind, "x"))
			require.NoError(t, err)
			evs, res := collect(t, ctxT(t, 10*time.Second), job)
			require.Equal(t, bus.StatusOK, res.Status)
			retries := ofType(evs, bus.EventRetry)
			require.Len(t, retries, 1)
			require.Len(t, res.Attempts, 2)
			require.Equal(t, string(code), res.Attempts[0].ErrorCode)
			require.Equal(t, res.Attempts[0].ErrorCode, retries[0].Code, "one vocabulary on the wire")
		})
	}
}

// A fallback event names the group the job goes to, with the wire code of
// the failure that sent it there.
func TestFallbackEventNamesItsGroup(t *testing.T) {
	t.Parallel()
	down := mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}})
	e := withRouter(t,
		policy.Group{Name: "demo", Options: retrying(-1, "backup"), Deployments: []policy.Deployment{{Name: "a", Model: "m", Provider: down}}},
		policy.Group{Name: "backup", Options: retrying(-1), Deployments: []policy.Deployment{{Name: "b", Model: "m", Provider: mock.New(mock.Config{})}}},
	)
	job, err := e.client.Publish(ctxT(t, 10*time.Second), "demo", userReq("fallback-group", "x"))
	require.NoError(t, err)
	evs, res := collect(t, ctxT(t, 10*time.Second), job)
	require.Equal(t, bus.StatusOK, res.Status)
	require.Equal(t, "backup", res.Group)
	fbs := ofType(evs, bus.EventFallback)
	require.Len(t, fbs, 1)
	require.Equal(t, "backup", fbs[0].Group)
	require.Equal(t, string(bus.CodeProviderUnavailable), fbs[0].Code)
	require.Equal(t, res.Attempts[0].ErrorCode, fbs[0].Code)
}

// Every code of the router's error table is a code of the wire contract.
func TestErrorTableCodesAreWireCodes(t *testing.T) {
	t.Parallel()
	wire := map[string]bool{}
	for _, c := range []bus.ErrorCode{bus.CodeInvalidRequest, bus.CodeUnknownGroup, bus.CodeTooLarge, bus.CodeContextWindowExceeded,
		bus.CodeContentPolicy, bus.CodeRateLimited, bus.CodeProviderUnavailable, bus.CodeTimeout, bus.CodeDeadlineExceeded,
		bus.CodeValidationFailed, bus.CodeAuth, bus.CodeBudgetExceeded, bus.CodeCancelled, bus.CodeInternal} {
		wire[string(c)] = true
	}
	for k := llm.KindUnknown; k <= llm.KindCancelled; k++ {
		require.True(t, wire[policy.Behaviour(k).Code], "%s -> %q", k, policy.Behaviour(k).Code)
	}
	code, _ := policy.WireCode(policy.ErrUnknownGroup)
	require.Equal(t, string(bus.CodeUnknownGroup), code)
}
