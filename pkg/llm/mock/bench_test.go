package mock

import (
	"testing"
	"time"
)

// BenchmarkPacedStream measures a paced stream's cost per chunk (section (d)
// of `make bench` replays a million paced chunks): the wait between chunks
// must not allocate a timer each time.
func BenchmarkPacedStream(b *testing.B) {
	const tokens = 200
	p := New(Config{Tokens: tokens, ChunkDelay: time.Nanosecond})
	req := userReq("x")
	b.ReportAllocs()
	for b.Loop() {
		s, err := p.Stream(b.Context(), req)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for s.Next() {
			n++
		}
		if err := s.Err(); err != nil || n < tokens {
			b.Fatalf("%d chunks, err %v", n, err)
		}
		_ = s.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/chunk")
}
