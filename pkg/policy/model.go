package policy

import (
	"cmp"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
)

// ResolveModel returns the one record of what is known of d's model, which
// the router resolves once, when it loads d (NewRouter, Reload), and which
// routing (context window, tools, images), the schema instruction, cost,
// metrics and the provider's max_tokens default then read:
//
//  1. the model catalogue's entry (pkg/llm/catalog), if any;
//  2. what d's provider reports (llm.CapabilityReporter): a non-zero report
//     replaces the capabilities and any limit it states;
//  3. d's overrides in DeploymentOptions (context_window, max_output,
//     input/output_cost_per_mtok, batch_input/output_cost_per_mtok,
//     supports_*), a price of 0 included.
//
// A model nobody knows is assumed to take tools and images, so that a new
// model is not refused for want of a catalogue entry, and not to take a JSON
// Schema natively unless its provider or the deployment says so (the schema
// then goes into the system prompt, which every model reads). Provider is
// d's vendor name (llm.Namer), else the catalogue's; Name is d.Model.
func ResolveModel(d *Deployment) catalog.Model {
	m := catalog.Model{Name: d.Model, Tools: true, Vision: true}
	if c, ok := catalog.Lookup(d.Model); ok {
		m = c
		m.Name = d.Model
		m.JSONSchema = false // the provider must say it passes the schema on
	}
	if cr, ok := d.Provider.(llm.CapabilityReporter); ok {
		if c := cr.Capabilities(d.Model); c != (llm.Capabilities{}) {
			m.Tools, m.Vision, m.JSONSchema = c.Tools, c.Vision, c.JSONSchema
			m.ContextWindow = cmp.Or(c.ContextWindow, m.ContextWindow)
			m.MaxOutput = cmp.Or(c.MaxOutput, m.MaxOutput)
		}
	}
	if n, ok := d.Provider.(llm.Namer); ok {
		m.Provider = n.ProviderName()
	}
	applyOverrides(&m, &d.Options)
	return m
}

func applyOverrides(m *catalog.Model, o *DeploymentOptions) {
	m.ContextWindow = cmp.Or(o.ContextWindow, m.ContextWindow)
	m.MaxOutput = cmp.Or(o.MaxOutput, m.MaxOutput)
	set(&m.InputPerMTok, o.InputCostPerMTok)
	set(&m.OutputPerMTok, o.OutputCostPerMTok)
	set(&m.BatchInputPerMTok, o.BatchInputCostPerMTok)
	set(&m.BatchOutputPerMTok, o.BatchOutputCostPerMTok)
	set(&m.Tools, o.SupportsTools)
	set(&m.Vision, o.SupportsVision)
	set(&m.JSONSchema, o.SupportsJSONSchema)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
