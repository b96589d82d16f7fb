// Package llm holds the provider-neutral chat types, the streaming Provider
// interface and the typed errors that every provider package returns.
//
// It is the seam between routing (pkg/policy) and the vendors
// (pkg/llm/openai, pkg/llm/anthropic, pkg/llm/gemini, pkg/llm/mock). It must
// never import NATS, pkg/bus or pkg/policy: a library user can take pkg/llm and
// one provider package alone.
//
// # Streams
//
// Provider.Stream returns either an error (the call failed before the first
// byte of the answer: connection refused, HTTP 429, bad request, ...) or a
// Stream, a pull iterator in the style of openai-go:
//
//	s, err := p.Stream(ctx, req)
//	if err != nil { ... }
//	defer s.Close()
//	for s.Next() {
//		c := s.Current()
//		...
//	}
//	if err := s.Err(); err != nil { ... }
//
// A Stream that ends without the vendor's end marker (the connection was cut)
// must report an *Error with MidStream set from Err, never a clean end: a
// truncated answer is a failure. The last chunk of a clean stream carries the
// FinishReason and, where the vendor reports it, the Usage.
package llm
