package policy

import (
	"cmp"
	"errors"
	"net/http"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
)

// The failure-rate rule of CooldownOptions, as LiteLLM's router has it
// (DEFAULT_FAILURE_THRESHOLD_PERCENT, DEFAULT_FAILURE_THRESHOLD_MINIMUM_REQUESTS,
// SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD, DEFAULT_COOLDOWN_TIME_SECONDS).
const (
	cooldownFailureRate  = 0.5
	cooldownMinCalls     = 5
	cooldownAllFailCalls = 1000
	cooldownDefault      = 5 * time.Second
)

// cooldownCounts reports whether a failure of kind k (HTTP status) counts
// toward a cooldown: it says the deployment is unwell, not the request.
func cooldownCounts(k llm.Kind, status int) bool {
	switch k {
	case llm.KindRateLimited, llm.KindAuth, llm.KindTimeout, llm.KindUnavailable, llm.KindUnknown:
		return true
	case llm.KindBadRequest:
		return status == http.StatusNotFound // the model is not there
	}
	return false
}

// cooldownAfter records the outcome of an attempt of d for g's cooldown
// rules and takes d out of the group when they say so.
func (x *execution) cooldownAfter(g *group, d *deployment, err error) {
	c := g.opts.Cooldown
	if c == nil {
		return
	}
	now := x.r.now()
	s := d.state
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollLocked(now)
	if err == nil {
		s.oks++
		return
	}
	k := llm.KindOf(err)
	if k == llm.KindCancelled {
		return
	}
	s.fails++
	var status int
	if e, ok := errors.AsType[*llm.Error](err); ok {
		status = e.Status
	}
	if !cooldownCounts(k, status) || !c.coolsLocked(s, now, k, status, len(g.deps)) {
		return
	}
	dur := cmp.Or(llm.RetryAfterOf(err), c.Duration, cooldownDefault)
	if d.opts.Cooldown != nil {
		dur = *d.opts.Cooldown
	}
	if dur <= 0 {
		return
	}
	until := now.Add(dur)
	if until.After(s.downUntil) {
		s.downUntil = until
	}
	s.counted = 0
	x.r.publishBreaker(d.Name, until)
}

// coolsLocked decides whether a counted failure of kind k cools s down:
// by allowed_fails when they are set, else by LiteLLM's failure-rate rule.
func (c *CooldownOptions) coolsLocked(s *depState, now time.Time, k llm.Kind, status, groupSize int) bool {
	if c.AllowedFails != nil || len(c.AllowedFailsPerKind) > 0 {
		return c.overAllowedLocked(s, now, k)
	}
	alone := groupSize < 2
	calls := s.oks + s.fails
	rate := float64(s.fails) / float64(max(calls, 1))
	switch {
	case k == llm.KindRateLimited && !alone:
		return true
	case rate == 1 && calls >= cooldownAllFailCalls:
		return true
	case rate > cooldownFailureRate && calls >= cooldownMinCalls && !alone:
		return true
	}
	// Not worth a retry: a bad key or a model that is not there.
	return k == llm.KindAuth || status == http.StatusNotFound
}

// overAllowedLocked counts a failure of kind k against allowed_fails (per
// kind first) and reports whether it is one too many.
func (c *CooldownOptions) overAllowedLocked(s *depState, now time.Time, k llm.Kind) bool {
	allowed, named := c.AllowedFailsPerKind[k.String()]
	if !named && c.AllowedFails != nil {
		allowed = *c.AllowedFails
	}
	if !s.lastCounted.IsZero() && now.Sub(s.lastCounted) > cmp.Or(c.Duration, cooldownDefault) {
		s.counted = 0
	}
	if s.counted+1 > allowed {
		return true
	}
	s.counted++
	s.lastCounted = now
	return false
}
