package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// settings are the router settings in force: router_settings over
// litellm_settings, each value with its path.
type settings map[string]lnode

func (s settings) get(key string) lnode { return s[key] }

// translate reads the whole file into t.m.
func (t *litellm) translate(root lnode) {
	for _, k := range root.keys(t) {
		t.apply(root.key(k), ruleFor(topKeys, "top-level", k))
	}
	t.environment(root.key("environment_variables"))
	t.credentials(root.key("credential_list"))
	set := t.settings(root.key("litellm_settings"), root.key("router_settings"))
	t.general(root.key("general_settings"))
	entries := t.modelList(root.key("model_list"), set)
	if len(t.errs) > 0 {
		return
	}
	t.groupOptions(entries, set)
	t.aliases(entries, set.get("model_group_alias"))
}

func (t *litellm) environment(n lnode) {
	if !n.set() {
		return
	}
	m, ok := n.v.(map[string]any)
	if !ok {
		t.fail(n, "want a map of variable names to values")
		return
	}
	t.env = map[string]string{}
	for _, k := range n.keys(t) {
		v := m[k]
		if v == nil {
			continue
		}
		t.env[k] = fmt.Sprint(v)
	}
}

// credentials reads credential_list: named credential_values that a
// deployment takes with litellm_credential_name.
func (t *litellm) credentials(n lnode) {
	if !n.set() {
		return
	}
	l, ok := n.v.([]any)
	if !ok {
		t.fail(n, "want a list of {credential_name, credential_values}")
		return
	}
	t.creds = map[string]map[string]any{}
	for i := range l {
		c := n.index(i)
		name, _ := c.key("credential_name").v.(string)
		values, ok := c.key("credential_values").v.(map[string]any)
		if name == "" || !ok {
			t.fail(c, "a credential needs a credential_name and credential_values")
			continue
		}
		for _, k := range c.keys(t) {
			switch k {
			case "credential_name", "credential_values":
			case "credential_info":
				t.notice(c.key(k), "informational")
			default:
				t.fail(c.key(k), "not a credential key")
			}
		}
		t.creds[name] = values
	}
}

// settings merges the router settings of litellm_settings and
// router_settings, checking every key of both.
func (t *litellm) settings(lit, router lnode) settings {
	s := settings{}
	for _, sec := range []struct {
		n    lnode
		name string
	}{{lit, "litellm_settings"}, {router, "router_settings"}} {
		if !sec.n.set() {
			continue
		}
		if _, ok := sec.n.v.(map[string]any); !ok {
			t.fail(sec.n, "want a map of settings")
			continue
		}
		for _, k := range sec.n.keys(t) {
			kn := sec.n.key(k)
			r, isRouter := routerKeys[k]
			if !isRouter {
				if sec.name == "litellm_settings" {
					r = ruleFor(litellmOnlyKeys, sec.name, k)
				} else {
					r = ruleFor(nil, sec.name, k)
				}
			}
			if k == "request_timeout" && sec.name == "litellm_settings" {
				k = "timeout" // litellm.request_timeout is the router's default timeout
			}
			if t.apply(kn, r) {
				s[k] = kn // router_settings comes second and wins
			}
		}
	}
	return s
}

func (t *litellm) general(n lnode) {
	if !t.mapping(n, "a map of settings") {
		return
	}
	for _, k := range n.keys(t) {
		kn := n.key(k)
		if !t.apply(kn, ruleFor(generalKeys, "general_settings", k)) {
			continue
		}
		switch k {
		case "master_key":
			t.masterKey(kn)
		case "max_parallel_requests":
			t.generalMaxPar = kn
		}
	}
}

// kindOfClass maps LiteLLM's exception classes, as retry_policy and
// allowed_fails_policy name them (without their Retries / AllowedFails
// suffix), to Switchyard's error kinds.
var kindOfClass = map[string]string{
	"BadRequestError":             "bad_request",
	"AuthenticationError":         "auth",
	"TimeoutError":                "timeout",
	"RateLimitError":              "rate_limited",
	"ContentPolicyViolationError": "content_policy",
	"InternalServerError":         "unavailable",
	"ServiceUnavailableError":     "unavailable",
	"BadGatewayError":             "unavailable",
	"NotFoundError":               "bad_request", // counted by its HTTP 404
}

// perKind reads retry_policy or allowed_fails_policy: {<Class><suffix>: n}.
func (t *litellm) perKind(n lnode, suffix string) map[string]int {
	if !t.mapping(n, fmt.Sprintf("a map of {<ExceptionClass>%s: n}", suffix)) {
		return nil
	}
	out := map[string]int{}
	for _, k := range n.keys(t) {
		kn := n.key(k)
		class, ok := strings.CutSuffix(k, suffix)
		kind, known := kindOfClass[class]
		if !ok || !known {
			t.fail(kn, "unknown exception class (want one of BadRequestError, AuthenticationError, TimeoutError, RateLimitError, ContentPolicyViolationError, InternalServerError, ServiceUnavailableError, BadGatewayError, NotFoundError, followed by %s)", suffix)
			continue
		}
		v, ok := t.count(kn)
		if !ok {
			continue
		}
		if suffix == "Retries" && class == "NotFoundError" {
			t.notice(kn, "LiteLLM never retries a 404 (its router raises NotFoundError before the retry policy), nor does Switchyard")
			continue
		}
		if suffix == "AllowedFails" && class == "ContentPolicyViolationError" {
			t.notice(kn, "a content policy error says nothing about the deployment: LiteLLM's router does not count it toward a cooldown, nor does Switchyard")
			continue
		}
		if prev, dup := out[kind]; dup {
			v = min(v, prev) // 5xx classes share a kind: the strictest holds
		}
		out[kind] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// masterKey lists general_settings.master_key as the gateway's admin key:
// like LiteLLM's, every call needs a key once one is set, and it may call
// the operator endpoints. The model file lists keys by their SHA-256 only,
// so an os.environ/ reference is read now.
func (t *litellm) masterKey(n lnode) {
	v, ok := t.resolved(n)
	key, _ := v.(string)
	if !ok || key == "" {
		if ok {
			t.fail(n, "want the key")
		}
		return
	}
	sum := sha256.Sum256([]byte(key))
	t.m.APIKeys = append(t.m.APIKeys, APIKey{SHA256: hex.EncodeToString(sum[:]), Admin: true, Name: "litellm master_key"})
	t.remap[fmt.Sprintf("$.api_keys[%d]", len(t.m.APIKeys)-1)] = n.path
}
