package policy

import (
	"cmp"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
)

// VendorBatchOptions send a group's work that can wait through its
// vendor's batch API (the model file's `vendor_batch: {after: 10m,
// max_wait: 24h}`): see internal/offload and docs/cost.md.
type VendorBatchOptions struct {
	// After is how long the first job waiting for a batch waits for
	// others before the batch is sent (default 10m). A batch is sent
	// sooner when it reaches its vendor's limits.
	After time.Duration `yaml:"after"`
	// MaxWait is the vendor's window a job must be able to wait: a
	// batch-class job whose deadline is nearer than MaxWait runs live
	// (default 24h, the vendors' completion window).
	MaxWait time.Duration `yaml:"max_wait"`
}

// WithDefaults returns o with zero fields set to their defaults.
func (o VendorBatchOptions) WithDefaults() VendorBatchOptions {
	o.After = cmp.Or(o.After, 10*time.Minute)
	o.MaxWait = cmp.Or(o.MaxWait, 24*time.Hour)
	return o
}

func (o *VendorBatchOptions) validate() error {
	switch {
	case o == nil:
		return nil
	case o.After < 0:
		return optionError("vendor_batch.after", "%s < 0", o.After)
	case o.MaxWait < 0:
		return optionError("vendor_batch.max_wait", "%s < 0", o.MaxWait)
	}
	if d := o.WithDefaults(); d.After >= d.MaxWait {
		return optionError("vendor_batch.after", "%s must be below max_wait %s", d.After, d.MaxWait)
	}
	return nil
}

// BatchTarget is where a group's vendor batches go: the first deployment
// of the group, in its tier and config order, whose provider has a batch
// API (llm.Batcher whose SupportsBatch is true).
type BatchTarget struct {
	Group      string
	Deployment string
	Model      string
	Batcher    llm.Batcher
	// Info is the deployment's resolved model (ResolveModel): its batch
	// prices price the answers (catalog.BatchCost).
	Info catalog.Model
	// Options are the group's vendor_batch options, with defaults.
	Options VendorBatchOptions
}

// BatchTarget returns where group's vendor batches go; false when the
// group does not set vendor_batch or none of its deployments has a batch
// API. It follows Reload.
func (r *Router) BatchTarget(group string) (BatchTarget, bool) {
	g, ok := r.cfg.Load().groups[group]
	if !ok || g.opts.VendorBatch == nil {
		return BatchTarget{}, false
	}
	var best *deployment
	for _, d := range g.deps {
		b, ok := d.Provider.(llm.Batcher)
		if !ok || !b.SupportsBatch() {
			continue
		}
		if best == nil || d.opts.Priority < best.opts.Priority {
			best = d
		}
	}
	if best == nil {
		return BatchTarget{}, false
	}
	return BatchTarget{
		Group: group, Deployment: best.Name, Model: best.Model, Batcher: best.Provider.(llm.Batcher),
		Info: best.info, Options: g.opts.VendorBatch.WithDefaults(),
	}, true
}
