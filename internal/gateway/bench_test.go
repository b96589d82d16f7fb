package gateway_test

import (
	"context"
	"testing"

	"github.com/openai/openai-go/v3"
)

// BenchmarkGatewayStream is one streamed chat completion through the
// gateway (openai-go -> gateway -> NATS -> worker -> mock, 20 chunks), all in
// this process, for a CPU profile of the gateway's part:
//
//	go test -run '^$' -bench GatewayStream -benchtime 3000x -cpuprofile cpu.out ./internal/gateway
//	go tool pprof -top -cum -focus 'internal/gateway|pkg/bus' cpu.out
func BenchmarkGatewayStream(b *testing.B) {
	f := newFleet(b, fleetOpts{})
	c := f.openai()
	params := openai.ChatCompletionNewParams{Model: "bench", Messages: userMsg("a prompt")}
	params.Model = "demo"
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s := c.Chat.Completions.NewStreaming(ctx, params)
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				b.Error(err)
			}
			_ = s.Close()
		}
	})
}
