package config

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
)

// Params are a deployment's default request parameters: a request that does
// not set one is sent with the deployment's (LiteLLM's litellm_params
// temperature, max_tokens, ...). A request's own value always wins.
type Params struct {
	Temperature *float64 `yaml:"temperature"`
	TopP        *float64 `yaml:"top_p"`
	MaxTokens   int      `yaml:"max_tokens"`
	Stop        []string `yaml:"stop"`
	Seed        *int64   `yaml:"seed"`
}

func (p *Params) check() *keyErr {
	switch {
	case p.MaxTokens < 0:
		return &keyErr{"params.max_tokens", "must not be negative"}
	case p.Temperature != nil && (*p.Temperature < 0 || *p.Temperature > 2):
		return &keyErr{"params.temperature", fmt.Sprintf("%v not in [0,2]", *p.Temperature)}
	case p.TopP != nil && (*p.TopP < 0 || *p.TopP > 1):
		return &keyErr{"params.top_p", fmt.Sprintf("%v not in [0,1]", *p.TopP)}
	}
	return nil
}

// withParams fills a request's unset parameters from the deployment's
// defaults. It reports the wrapped provider's name and capabilities, so the
// router sees the same deployment.
type withParams struct {
	p      llm.Provider
	params Params
}

var (
	_ llm.Provider           = withParams{}
	_ llm.Namer              = withParams{}
	_ llm.CapabilityReporter = withParams{}
	_ llm.Batcher            = withParams{}
)

func (w withParams) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	return w.p.Stream(ctx, w.fill(req))
}

// fill returns a copy of req with its unset parameters set from the
// deployment's defaults.
func (w withParams) fill(req *llm.Request) *llm.Request {
	r := *req
	if r.Temperature == nil {
		r.Temperature = w.params.Temperature
	}
	if r.TopP == nil {
		r.TopP = w.params.TopP
	}
	if r.MaxTokens == 0 {
		r.MaxTokens = w.params.MaxTokens
	}
	if r.Stop == nil {
		r.Stop = w.params.Stop
	}
	if r.Seed == nil {
		r.Seed = w.params.Seed
	}
	return &r
}

func (w withParams) ProviderName() string {
	if n, ok := w.p.(llm.Namer); ok {
		return n.ProviderName()
	}
	return fmt.Sprintf("%T", w.p)
}

// Capabilities forwards to the wrapped provider; a provider that reports
// none answers the zero value, which the router reads as unknown.
func (w withParams) Capabilities(model string) llm.Capabilities {
	if c, ok := w.p.(llm.CapabilityReporter); ok {
		return c.Capabilities(model)
	}
	return llm.Capabilities{}
}

// SupportsBatch implements llm.Batcher: the wrapped provider's batch API,
// if it has one, with the same defaults filled into every line.
func (w withParams) SupportsBatch() bool {
	b, ok := w.p.(llm.Batcher)
	return ok && b.SupportsBatch()
}

func (w withParams) batcher() llm.Batcher {
	if b, ok := w.p.(llm.Batcher); ok {
		return b
	}
	return noBatch{}
}

// BatchLimits implements llm.Batcher.
func (w withParams) BatchLimits() (lines, bytes int) { return w.batcher().BatchLimits() }

// SubmitBatch implements llm.Batcher.
func (w withParams) SubmitBatch(ctx context.Context, ref string, reqs []llm.BatchRequest) (*llm.BatchInfo, error) {
	filled := make([]llm.BatchRequest, len(reqs))
	for i, r := range reqs {
		filled[i] = llm.BatchRequest{CustomID: r.CustomID, Request: w.fill(r.Request)}
	}
	return w.batcher().SubmitBatch(ctx, ref, filled)
}

// FindBatch implements llm.Batcher.
func (w withParams) FindBatch(ctx context.Context, ref string, since time.Time, n int) (*llm.BatchInfo, error) {
	return w.batcher().FindBatch(ctx, ref, since, n)
}

// PollBatch implements llm.Batcher.
func (w withParams) PollBatch(ctx context.Context, id string) (*llm.BatchInfo, error) {
	return w.batcher().PollBatch(ctx, id)
}

// BatchAnswers implements llm.Batcher.
func (w withParams) BatchAnswers(ctx context.Context, id string) iter.Seq2[llm.BatchAnswer, error] {
	return w.batcher().BatchAnswers(ctx, id)
}

// CancelBatch implements llm.Batcher.
func (w withParams) CancelBatch(ctx context.Context, id string) error {
	return w.batcher().CancelBatch(ctx, id)
}

// noBatch is the Batcher of a provider without a batch API.
type noBatch struct{}

func (noBatch) SupportsBatch() bool             { return false }
func (noBatch) BatchLimits() (lines, bytes int) { return 0, 0 }
func (noBatch) SubmitBatch(context.Context, string, []llm.BatchRequest) (*llm.BatchInfo, error) {
	return nil, llm.ErrBatchUnsupported
}
func (noBatch) FindBatch(context.Context, string, time.Time, int) (*llm.BatchInfo, error) {
	return nil, llm.ErrBatchUnsupported
}
func (noBatch) PollBatch(context.Context, string) (*llm.BatchInfo, error) {
	return nil, llm.ErrBatchUnsupported
}
func (noBatch) BatchAnswers(context.Context, string) iter.Seq2[llm.BatchAnswer, error] {
	return func(yield func(llm.BatchAnswer, error) bool) { yield(llm.BatchAnswer{}, llm.ErrBatchUnsupported) }
}
func (noBatch) CancelBatch(context.Context, string) error { return llm.ErrBatchUnsupported }
