package policy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// A router without NATS: the group "main" has one deployment, which is
// down; after its retries the request falls back to the group "backup".
// The mock provider stands in for any llm.Provider (openai.New,
// anthropic.New, gemini.New, ...).
func Example() {
	down := mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}})
	up := mock.New(mock.Config{Text: "Hello from the backup."})
	quick := policy.RetryOptions{MaxRetries: 1, Backoff: policy.BackoffOptions{Initial: time.Millisecond, Max: time.Millisecond}}
	r, err := policy.NewRouter([]policy.Group{
		{Name: "main", Options: policy.GroupOptions{Retry: quick, Fallbacks: []string{"backup"}},
			Deployments: []policy.Deployment{{Name: "primary", Model: "gpt-4o", Provider: down}}},
		{Name: "backup", Deployments: []policy.Deployment{{Name: "secondary", Model: "claude-sonnet-4", Provider: up}}},
	})
	if err != nil {
		panic(err)
	}
	defer r.Close()

	req := &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "Say hello"}}}
	out, err := r.Execute(context.Background(), &policy.Call{Group: "main", Request: req}, func(e policy.Event) {
		switch e.Type {
		case policy.EventRetry, policy.EventFallback:
			code, _ := policy.WireCode(e.Err)
			fmt.Printf("%s (%s) to %s\n", e.Type, code, e.Group)
		}
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Text)
	fmt.Printf("answered by %s/%s after %d attempts\n", out.Group, out.Deployment, len(out.Attempts))
	// Output:
	// retry (provider_unavailable) to main
	// fallback (provider_unavailable) to backup
	// Hello from the backup.
	// answered by backup/secondary after 3 attempts
}
