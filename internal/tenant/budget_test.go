package tenant

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

func TestConcurrentChargesFromTwoWorkersAddUp(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	limits := map[string]Limit{"acme": {Tokens: 1000, Window: time.Hour}}
	var bs []*Budgets
	for range 2 {
		js, err := jetstream.New(natstest.Connect(t, srv))
		require.NoError(t, err)
		b, err := New(ctx, js, limits, 1, nil)
		require.NoError(t, err)
		bs = append(bs, b)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() { require.NoError(t, bs[i%2].Charge(ctx, "acme", 10, 0.5)) })
	}
	wg.Wait()
	s, err := bs[0].Spent(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, Spent{Tokens: 400, CostUSD: 20}, s)
	require.NoError(t, bs[1].Allow(ctx, "acme"))
	require.NoError(t, bs[1].Charge(ctx, "acme", 600, 0))
	require.ErrorIs(t, bs[0].Allow(ctx, "acme"), &bus.Error{Code: bus.CodeBudgetExceeded})
	require.NoError(t, bs[0].Allow(ctx, "someone-else"), "tenants without a budget are not limited")
}
