package config

import (
	"math"
	"slices"
	"time"

	"github.com/switchyard/switchyard/pkg/policy"
)

// LiteLLM's router defaults (litellm/router.py, router_utils/cooldown_handlers.py,
// litellm.allowed_fails, litellm.ROUTER_MAX_FALLBACKS).
const (
	litellmNumRetries   = 2 // openai.DEFAULT_MAX_RETRIES, when neither num_retries is set
	litellmAllowedFails = 3
	litellmMaxFallbacks = 5
)

// litellmStrategy maps routing_strategy to a policy strategy, and says
// whether the strategy treats rpm and tpm as limits (LiteLLM's usage,
// latency and cost strategies skip a deployment over them; simple-shuffle
// weighs by them).
func (t *litellm) litellmStrategy(n lnode) (s policy.Strategy, limits bool) {
	name := "simple-shuffle"
	if n.set() {
		name, _ = t.str(n)
	}
	switch name {
	case "simple-shuffle":
		return policy.StrategyWeighted, false
	case "least-busy":
		return policy.StrategyLeastBusy, false
	case "latency-based-routing":
		return policy.StrategyLowestLatency, true
	case "usage-based-routing", "usage-based-routing-v2":
		return policy.StrategyUsageBased, true
	case "cost-based-routing":
		return policy.StrategyCost, true
	case "priority":
		t.notice(n, "priority is Switchyard's strategy, not LiteLLM's: model_info.priority orders the deployments, lowest first, config order on ties")
		return policy.StrategyPriority, false
	}
	t.fail(n, "cannot be honoured: routing strategy %q (want simple-shuffle, least-busy, latency-based-routing, usage-based-routing, usage-based-routing-v2, cost-based-routing, or Switchyard's priority)", name)
	return "", false
}

// groupOptions builds each group from its entries and the router settings.
func (t *litellm) groupOptions(entries []*lentry, set settings) {
	strategy, limits := t.litellmStrategy(set.get("routing_strategy"))
	byGroup := map[string][]*lentry{}
	var order []string
	for _, e := range entries {
		if _, ok := byGroup[e.group]; !ok {
			order = append(order, e.group)
		}
		byGroup[e.group] = append(byGroup[e.group], e)
	}
	fb := t.fallbacks(set, entries)
	base := t.baseOptions(set)
	defMaxPar := t.firstCount(set.get("default_max_parallel_requests"), set.get("max_parallel_requests"), t.generalMaxPar)
	groupRetry := t.groupRetryPolicies(set.get("model_group_retry_policy"), entries)
	for _, g := range order {
		es := byGroup[g]
		o := base
		if base.Cooldown != nil {
			c := *base.Cooldown
			o.Cooldown = &c
		}
		o.Strategy = strategy
		o.OnError = t.onError(len(es), fb.cpConfigured)
		if pk, ok := groupRetry[es[0].name]; ok {
			o.Retry.PerKind = pk
		}
		if n := t.numRetries(es); n != nil {
			o.Retry.MaxRetries = *n
			if *n == 0 {
				o.Retry.MaxRetries = -1
			}
		}
		o.Fallbacks, o.ContextWindowFallbacks, o.ContentPolicyFallbacks = fb.lists(es[0].name, g)
		grp := &Group{GroupOptions: o}
		weights := t.weights(es, strategy)
		tiers := t.tiers(es, strategy)
		for i, e := range es {
			d := e.d
			d.Priority = tiers[i]
			if weights != nil {
				d.Weight = weights[i].w
				if weights[i].zero {
					d.Priority++ // LiteLLM never picks a weight of 0 while another is there
				}
			}
			if limits {
				d.RPM, d.TPM = intOr0(e.rpm), intOr0(e.tpm)
			}
			d.MaxConcurrency = maxParallel(e.maxPar, e.rpm, e.tpm, defMaxPar)
			grp.Deployments = append(grp.Deployments, d)
		}
		t.m.Groups[g] = grp
	}
	t.placeRemaps(entries)
}

func intOr0(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func (t *litellm) firstCount(ns ...lnode) *int {
	for _, n := range ns {
		if n.set() {
			return t.intp(n)
		}
	}
	return nil
}

// maxParallel is LiteLLM's calculate_max_parallel_requests: the
// deployment's max_parallel_requests, else its rpm, else tpm/1000*6, else
// the router's default; 0 for none.
func maxParallel(own, rpm, tpm, def *int) int {
	switch {
	case own != nil:
		return *own
	case rpm != nil:
		return *rpm
	case tpm != nil:
		return max(*tpm/1000*6, 1)
	case def != nil:
		return *def
	}
	return 0
}

// baseOptions are the options every group shares.
func (t *litellm) baseOptions(set settings) policy.GroupOptions {
	o := policy.GroupOptions{MaxFallbacks: litellmMaxFallbacks}
	o.Retry = policy.RetryOptions{
		MaxRetries: litellmNumRetries,
		// LiteLLM's backoff (litellm._calculate_retry_after): 0.5 s doubling
		// to 8 s, jittered down by up to a quarter; a Retry-After is honoured.
		Backoff:         policy.BackoffOptions{Initial: 500 * time.Millisecond, Max: 8 * time.Second},
		Jitter:          0.25,
		AtOnceElsewhere: true,
	}
	if n := set.get("num_retries"); n.set() {
		if v, ok := t.count(n); ok {
			o.Retry.MaxRetries = v
			if v == 0 {
				o.Retry.MaxRetries = -1
			}
		}
	}
	if n := set.get("retry_after"); n.set() {
		// LiteLLM's retry_after is the least wait before a retry that goes
		// back to a deployment (a retry elsewhere goes at once): the
		// backoff starts there, unjittered, so that no wait is shorter.
		if ra, ok := t.seconds(n); ok && ra > 0 {
			o.Retry.Backoff.Initial = max(o.Retry.Backoff.Initial, ra)
			o.Retry.Backoff.Max = max(o.Retry.Backoff.Max, ra)
			o.Retry.Jitter = -1
		}
	}
	o.Retry.PerKind = t.perKind(set.get("retry_policy"), "Retries")
	timeout := set.get("timeout")
	if st := set.get("stream_timeout"); st.set() {
		timeout = st // every call here streams
	}
	if timeout.set() {
		if v, ok := t.seconds(timeout); ok && v > 0 {
			// A LiteLLM timeout bounds each read of the answer, as an HTTP
			// client's read timeout does: the first chunk and every next one.
			o.Timeouts.TTFT, o.Timeouts.Idle = v, v
		}
	}
	if n := set.get("max_fallbacks"); n.set() {
		if v, ok := t.count(n); ok {
			o.MaxFallbacks = v
		}
	}
	o.Cooldown = t.cooldown(set)
	if o.Cooldown == nil {
		o.Breaker.Disabled = true
	}
	return o
}

// cooldown maps allowed_fails, allowed_fails_policy, cooldown_time and
// disable_cooldowns (nil: no cooldown).
func (t *litellm) cooldown(set settings) *policy.CooldownOptions {
	if n := set.get("disable_cooldowns"); n.set() {
		if off, ok := t.boolean(n); ok && off {
			return nil
		}
	}
	c := &policy.CooldownOptions{}
	if n := set.get("cooldown_time"); n.set() {
		c.Duration, _ = t.seconds(n)
	}
	c.AllowedFailsPerKind = t.perKind(set.get("allowed_fails_policy"), "AllowedFails")
	af := set.get("allowed_fails")
	var allowed *int
	if af.set() {
		allowed = t.intp(af)
	}
	switch {
	case len(c.AllowedFailsPerKind) > 0:
		n := litellmAllowedFails
		if allowed != nil {
			n = *allowed
		}
		c.AllowedFails = &n
	case allowed != nil && *allowed != litellmAllowedFails:
		c.AllowedFails = allowed
	case allowed != nil:
		t.notice(af, "3 is LiteLLM's default, which its router takes as unset: a deployment is cooled down by the failure-rate rule (_is_allowed_fails_set_on_router), as here; write another number to count failures")
	}
	return c
}

// onError is LiteLLM's choice of what retries (Router.should_retry_this_error):
// a bad request and (without content_policy_fallbacks) a content policy
// failure are retried like any error; an auth failure is retried when the
// group has another deployment; a context window never is (Switchyard
// checks it before the call and sends the request to the
// context_window_fallbacks).
func (t *litellm) onError(deployments int, cpFallbacks bool) map[string]policy.Action {
	o := map[string]policy.Action{"bad_request": policy.ActionRetry, "auth": policy.ActionFallback, "content_policy": policy.ActionRetry}
	if deployments > 1 {
		o["auth"] = policy.ActionRetry
	}
	if cpFallbacks {
		o["content_policy"] = policy.ActionFallback
	}
	return o
}

// numRetries is the deployments' own num_retries when they agree.
func (t *litellm) numRetries(es []*lentry) *int {
	var n *int
	for _, e := range es {
		if e.numRetries == nil {
			continue
		}
		if n != nil && *n != *e.numRetries {
			t.fail(e.n.key("litellm_params").key("num_retries"), "cannot be honoured: the deployments of %q set different num_retries; retries are the group's", e.name)
			return nil
		}
		n = e.numRetries
	}
	return n
}

func (t *litellm) groupRetryPolicies(n lnode, entries []*lentry) map[string]map[string]int {
	if !t.mapping(n, "a map of model_name to retry policy") {
		return nil
	}
	known := map[string]bool{}
	for _, e := range entries {
		known[e.name] = true
	}
	out := map[string]map[string]int{}
	for _, k := range n.keys(t) {
		if !known[k] {
			t.fail(n.key(k), "no model_name %q in model_list", k)
			continue
		}
		out[k] = t.perKind(n.key(k), "Retries")
	}
	return out
}

type weight struct {
	w    int
	zero bool
}

// weights are simple-shuffle's (router_strategy/simple_shuffle.py): by the
// weight of the deployments when the group's first one sets one, else by
// rpm, else by tpm, else even; a deployment without the chosen value
// weighs 0. nil for the other strategies.
func (t *litellm) weights(es []*lentry, s policy.Strategy) []weight {
	if s != policy.StrategyWeighted {
		for _, e := range es {
			if e.weight != nil {
				t.notice(e.n.key("litellm_params").key("weight"), "weight is read by simple-shuffle only, as in LiteLLM")
			}
		}
		return nil
	}
	var pick func(*lentry) *float64
	switch first := es[0]; {
	case first.weight != nil:
		pick = func(e *lentry) *float64 { return e.weight }
	case first.rpm != nil:
		pick = func(e *lentry) *float64 { return floatp(e.rpm) }
	case first.tpm != nil:
		pick = func(e *lentry) *float64 { return floatp(e.tpm) }
	default:
		return nil // even: the native default weight
	}
	vals := make([]float64, len(es))
	whole := true
	for i, e := range es {
		if v := pick(e); v != nil {
			vals[i] = *v
			whole = whole && vals[i] == math.Trunc(vals[i])
		}
	}
	scale := 1.0
	if !whole {
		scale = 1000 // fractional weights: the same proportions in whole numbers
	}
	out := make([]weight, len(es))
	for i, v := range vals {
		w := int(math.Round(v * scale))
		out[i] = weight{w: max(w, 1), zero: w == 0}
	}
	return out
}

func floatp(p *int) *float64 {
	if p == nil {
		return nil
	}
	f := float64(*p)
	return &f
}

// tiers are the deployments' priority tiers, two apart (a weight of 0 takes
// the odd one below its tier): by LiteLLM's order, lowest first, those
// without an order after all with one; for Switchyard's priority strategy,
// by model_info.priority.
func (t *litellm) tiers(es []*lentry, s policy.Strategy) []int {
	out := make([]int, len(es))
	if s == policy.StrategyPriority {
		for i, e := range es {
			p := e.priority
			if p == nil {
				p = e.order
			} else if e.order != nil && *e.order != *p {
				t.fail(e.n.key("model_info").key("priority"), "order %d and priority %d disagree; give one", *e.order, *p)
			}
			out[i] = intOr0(p)
		}
		return out
	}
	maxOrder, any := 0, false
	for _, e := range es {
		if e.priority != nil {
			t.notice(e.n.key("model_info").key("priority"), "model_info.priority is read by the priority routing strategy only")
		}
		if e.order != nil {
			maxOrder, any = max(maxOrder, *e.order), true
		}
	}
	if !any {
		return out
	}
	for i, e := range es {
		o := maxOrder + 1
		if e.order != nil {
			o = *e.order
		}
		out[i] = 2 * o
	}
	return out
}

// fallbackSet holds the three fallback settings by model_name.
type fallbackSet struct {
	regular, cw, cp            map[string][]string // model_name -> group tokens
	deflt                      []string            // default_fallbacks and "*"
	cwConfigured, cpConfigured bool
	tokens                     map[string]string
}

// lists returns a group's regular, context window and content policy
// fallbacks (LiteLLM: the group's own list, else default_fallbacks; a
// context window or content policy failure without its own setting goes to
// the regular ones).
func (f *fallbackSet) lists(name, token string) (regular, cw, cp []string) {
	regular, ok := f.regular[name]
	if !ok {
		for _, g := range f.deflt {
			if g != token {
				regular = append(regular, g)
			}
		}
	}
	cw, cp = regular, regular
	if f.cwConfigured {
		cw = f.cw[name]
	}
	if f.cpConfigured {
		cp = f.cp[name]
	}
	return regular, cw, cp
}

// fallbacks reads fallbacks, context_window_fallbacks,
// content_policy_fallbacks and default_fallbacks.
func (t *litellm) fallbacks(set settings, entries []*lentry) *fallbackSet {
	f := &fallbackSet{tokens: map[string]string{}}
	ids := map[string]bool{}
	for _, e := range entries {
		f.tokens[e.name] = e.group
		if e.d != nil {
			ids[e.d.Name] = true
		}
	}
	aliases := t.aliasTargets(set.get("model_group_alias"))
	target := func(n lnode) (string, bool) {
		name, ok := n.v.(string)
		if !ok {
			t.fail(n, "want a model_name")
			return "", false
		}
		if g, ok := f.tokens[name]; ok {
			return g, true
		}
		if to, ok := aliases[name]; ok {
			if g, ok := f.tokens[to]; ok {
				return g, true
			}
		}
		if ids[name] {
			t.fail(n, "cannot be honoured: a fallback to one deployment (model_info.id %q); name a model group, or give that deployment a model_name of its own", name)
			return "", false
		}
		t.fail(n, "no model_name %q in model_list", name)
		return "", false
	}
	read := func(n lnode, deflt bool) map[string][]string {
		if !n.set() {
			return nil
		}
		l, ok := n.v.([]any)
		if !ok {
			t.fail(n, `want a list of {model_name: [fallback, ...]}`)
			return nil
		}
		out := map[string][]string{}
		for i := range l {
			item := n.index(i)
			m, ok := item.v.(map[string]any)
			if !ok || len(m) != 1 {
				t.fail(item, `want {model_name: [fallback, ...]}, one key`)
				continue
			}
			for _, k := range item.keys(t) {
				if k == "*" && deflt {
					f.deflt = append(f.deflt, t.targets(item.key(k), target)...)
					continue
				}
				if _, known := f.tokens[k]; !known {
					t.fail(item.key(k), "no model_name %q in model_list", k)
					continue
				}
				if _, dup := out[k]; dup {
					t.fail(item.key(k), "%q has fallbacks twice", k)
					continue
				}
				out[k] = t.targets(item.key(k), target)
			}
		}
		return out
	}
	f.regular = read(set.get("fallbacks"), true)
	f.cw = read(set.get("context_window_fallbacks"), false)
	f.cp = read(set.get("content_policy_fallbacks"), false)
	f.cwConfigured = set.get("context_window_fallbacks").set()
	f.cpConfigured = set.get("content_policy_fallbacks").set()
	if n := set.get("default_fallbacks"); n.set() {
		if _, ok := n.v.([]any); !ok {
			t.fail(n, "want a list of model_names")
		} else {
			f.deflt = append(t.targets(n, target), f.deflt...)
		}
	}
	return f
}

// targets reads a list of fallback names (or one name) into groups.
func (t *litellm) targets(n lnode, target func(lnode) (string, bool)) []string {
	var out []string
	add := func(n lnode) {
		if g, ok := target(n); ok && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	if l, ok := n.v.([]any); ok {
		for i := range l {
			add(n.index(i))
		}
		return out
	}
	add(n)
	return out
}

// aliasTargets reads model_group_alias into alias -> model_name.
func (t *litellm) aliasTargets(n lnode) map[string]string {
	out := map[string]string{}
	m, _ := n.v.(map[string]any)
	for k, v := range m {
		switch x := v.(type) {
		case string:
			out[k] = x
		case map[string]any:
			if s, ok := x["model"].(string); ok {
				out[k] = s
			}
		}
	}
	return out
}

// aliases keeps every model_name that is not a group name as an alias of
// its group, and maps model_group_alias.
func (t *litellm) aliases(entries []*lentry, n lnode) {
	t.m.Aliases = map[string]Alias{}
	tokens := map[string]string{}
	for _, e := range entries {
		tokens[e.name] = e.group
		if e.name != e.group {
			if t.m.unlisted == nil {
				t.m.unlisted = map[string]bool{}
			}
			t.m.unlisted[e.group] = true
			t.m.Aliases[e.name] = Alias{Group: e.group}
			t.remap["$.aliases."+pathKey(e.name)] = e.n.key("model_name").path
		}
	}
	if !t.mapping(n, "a map of alias to model_name") {
		return
	}
	for _, k := range n.keys(t) {
		kn := n.key(k)
		var to string
		hidden := false
		switch v := kn.v.(type) {
		case string:
			to = v
		case map[string]any:
			to, _ = v["model"].(string)
			if h := kn.key("hidden"); h.set() {
				hidden, _ = t.boolean(h)
			}
			for hk := range v {
				if hk != "model" && hk != "hidden" {
					t.fail(kn.key(hk), "want {model, hidden}")
				}
			}
		default:
			t.fail(kn, "want a model_name or {model, hidden}")
			continue
		}
		g, ok := tokens[to]
		switch {
		case !ok:
			t.fail(kn, "no model_name %q in model_list", to)
		case tokens[k] != "":
			t.fail(kn, "alias %q is also a model_name", k)
		default:
			t.m.Aliases[k] = Alias{Group: g, Hidden: hidden}
			t.remap["$.aliases."+pathKey(k)] = kn.path
		}
	}
}
