package config

import (
	"context"
	"fmt"

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
)

func (w withParams) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
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
	return w.p.Stream(ctx, &r)
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
