package policy_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

// named answers with its name, so a test sees which executor ran a call.
type named string

func (n named) Execute(_ context.Context, c *policy.Call, _ func(policy.Event)) (*policy.Outcome, error) {
	return &policy.Outcome{Group: c.Group, Text: string(n), Usage: llm.Usage{TotalTokens: 7}, CostUSD: 0.5}, nil
}

func TestTenantsRouteToTheirOwnExecutor(t *testing.T) {
	t.Parallel()
	e := policy.Tenants(named("default"), map[string]policy.Executor{"acme": named("acme")})
	for tenant, want := range map[string]string{"acme": "acme", "globex": "default", "": "default"} {
		out, err := e.Execute(t.Context(), &policy.Call{Group: "g", Tenant: tenant}, nil)
		require.NoError(t, err)
		require.Equal(t, want, out.Text, "tenant %q", tenant)
	}
}

// spend is a budget of a few calls per tenant.
type spend struct {
	mu      sync.Mutex
	left    map[string]int
	charged map[string]int
	failing bool
}

func (s *spend) Allow(ctx context.Context, tenant string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("budget asked without a timeout")
	}
	if s.left[tenant] <= 0 {
		return spent{}
	}
	return nil
}

func (s *spend) Charge(_ context.Context, tenant string, tokens int, _ float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return errors.New("store down")
	}
	s.left[tenant]--
	s.charged[tenant] += tokens
	return nil
}

type spent struct{}

func (spent) Error() string            { return "budget spent" }
func (spent) WireCode() (string, bool) { return "budget_exceeded", false }

func TestTenantBudget(t *testing.T) {
	t.Parallel()
	b := &spend{left: map[string]int{"acme": 2}, charged: map[string]int{}}
	var chargeErrs []string
	e := policy.Chain(named("router"), policy.TenantBudget(b, policy.BudgetOptions{Timeout: time.Second,
		OnChargeError: func(tenant string, err error) { chargeErrs = append(chargeErrs, tenant+": "+err.Error()) }}))
	for range 2 {
		_, err := e.Execute(t.Context(), &policy.Call{Group: "g", Tenant: "acme"}, nil)
		require.NoError(t, err)
	}
	require.Equal(t, 14, b.charged["acme"])
	_, err := e.Execute(t.Context(), &policy.Call{Group: "g", Tenant: "acme"}, nil)
	code, _ := policy.WireCode(err)
	require.Equal(t, "budget_exceeded", code, "a spent budget refuses before any call")
	require.Equal(t, 14, b.charged["acme"])

	out, err := e.Execute(t.Context(), &policy.Call{Group: "g"}, nil)
	require.NoError(t, err, "the anonymous tenant has no budget")
	require.Equal(t, "router", out.Text)

	b.failing, b.left["globex"] = true, 1
	_, err = e.Execute(t.Context(), &policy.Call{Group: "g", Tenant: "globex"}, nil)
	require.NoError(t, err, "a charge that fails does not fail the call")
	require.Equal(t, []string{"globex: store down"}, chargeErrs)
}

type observed struct {
	calls []string
	took  time.Duration
}

func (o *observed) CallDone(c *policy.Call, out *policy.Outcome, err error, took time.Duration) {
	o.calls = append(o.calls, c.Group+"/"+out.Text)
	o.took = took
}

func TestObserve(t *testing.T) {
	t.Parallel()
	o := &observed{}
	e := policy.Chain(named("r"), policy.Observe(o))
	_, err := e.Execute(t.Context(), &policy.Call{Group: "g"}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"g/r"}, o.calls)
}
