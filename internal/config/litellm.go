package config

// LiteLLM proxy config.yaml, read as a model file.
//
// A file whose top-level keys are LiteLLM's (model_list, router_settings,
// litellm_settings, general_settings, environment_variables, credential_list)
// is translated into Switchyard's own model (Models) and then checked like a
// native file, with every error naming the LiteLLM key and line. Each key is
// either mapped, accepted with a notice (it has no meaning here: Redis,
// databases, callbacks to hosted services), or refused with the reason (it
// asks for something Switchyard cannot do). docs/litellm.md is the map.
//
// LiteLLM's behaviour is taken from its documentation and its router's
// source: docs.litellm.ai/docs/proxy/configs, /docs/proxy/config_settings,
// /docs/proxy/reliability, /docs/routing, and litellm/router.py,
// litellm/router_utils/cooldown_handlers.py, fallback_event_handlers.py,
// get_retry_from_policy.py, litellm/router_strategy/simple_shuffle.py.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// litellmTop are LiteLLM's top-level keys; any of them marks a LiteLLM file.
var litellmTop = []string{"model_list", "router_settings", "litellm_settings", "general_settings", "environment_variables", "credential_list"}

// isLiteLLM reports whether src is a LiteLLM proxy config, by its top-level
// keys. A file with both LiteLLM's keys and Switchyard's groups is neither.
func isLiteLLM(name string, src []byte) (bool, error) {
	var top map[string]any
	if err := yaml.Unmarshal(src, &top); err != nil {
		return false, nil // the native decoder reports it, with its position
	}
	var theirs []string
	for _, k := range litellmTop {
		if _, ok := top[k]; ok {
			theirs = append(theirs, k)
		}
	}
	if len(theirs) == 0 {
		return false, nil
	}
	if _, ok := top["groups"]; ok {
		return false, fmt.Errorf("config: %s: has Switchyard's groups and LiteLLM's %s: a model file is one or the other", name, strings.Join(theirs, ", "))
	}
	return true, nil
}

// lnode is a value of the LiteLLM file and its YAML path, for lines.
type lnode struct {
	path string
	v    any
}

func (n lnode) key(k string) lnode {
	m, _ := n.v.(map[string]any)
	return lnode{path: n.path + "." + pathKey(k), v: m[k]}
}

func (n lnode) index(i int) lnode {
	l, _ := n.v.([]any)
	var v any
	if i < len(l) {
		v = l[i]
	}
	return lnode{path: fmt.Sprintf("%s[%d]", n.path, i), v: v}
}

func (n lnode) set() bool { return n.v != nil }

// mapping reports whether n is a mapping to read: false when it is not set,
// and, with an error saying what is wanted, when it is set to something else.
func (t *litellm) mapping(n lnode, want string) bool {
	if !n.set() {
		return false
	}
	if _, ok := n.v.(map[string]any); !ok {
		t.fail(n, "want %s", want)
		return false
	}
	return true
}

// keys returns the mapping's keys in file order (by line).
func (n lnode) keys(t *litellm) []string {
	m, _ := n.v.(map[string]any)
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b string) int {
		la, lb := t.line(n.key(a).path), t.line(n.key(b).path)
		if la != lb {
			return la - lb
		}
		return strings.Compare(a, b)
	})
	return ks
}

// litellm translates one LiteLLM file.
type litellm struct {
	m       *Models
	errs    []error
	env     map[string]string         // environment_variables
	creds   map[string]map[string]any // credential_list, by name
	remap   map[string]string         // native path -> LiteLLM path
	lines   map[string]int
	noticed map[string]bool
	// generalMaxPar is general_settings.max_parallel_requests.
	generalMaxPar lnode
}

// parseLiteLLM translates a LiteLLM proxy config into Models (unresolved:
// secrets are still ${VAR} references); lookup is the environment.
func parseLiteLLM(name string, src []byte) (*Models, error) {
	var plain map[string]any
	if err := yaml.Unmarshal(src, &plain); err != nil {
		return nil, fmt.Errorf("config: %s: %s", name, yaml.FormatError(err, false, true))
	}
	t := &litellm{
		m:       &Models{path: name, src: src, Groups: map[string]*Group{}},
		remap:   map[string]string{},
		lines:   map[string]int{},
		noticed: map[string]bool{},
	}
	t.translate(lnode{path: "$", v: plain})
	if len(t.errs) > 0 {
		return nil, errors.Join(t.errs...)
	}
	t.m.remap = t.remapPath
	t.m.env = t.env
	return t.m, nil
}

// line returns the line of path in the LiteLLM file (0 if unknown).
func (t *litellm) line(path string) int {
	if l, ok := t.lines[path]; ok {
		return l
	}
	l := 0
	if p, err := yaml.PathString(path); err == nil {
		if n, err := p.ReadNode(bytes.NewReader(t.m.src)); err == nil && n != nil && n.GetToken() != nil {
			l = n.GetToken().Position.Line
		}
	}
	t.lines[path] = l
	return l
}

func (t *litellm) fail(n lnode, format string, args ...any) {
	t.errs = append(t.errs, t.m.errAt(n.path, format, args...))
}

// notice records that n is accepted without effect, once per key.
func (t *litellm) notice(n lnode, reason string) {
	if t.noticed[n.path] {
		return
	}
	t.noticed[n.path] = true
	t.m.notices = append(t.m.notices, Notice{Key: strings.TrimPrefix(n.path, "$."), Line: t.line(n.path), Reason: reason})
}

// remapPath turns a native path ($.groups.g.deployments[0].endpoint) into
// the LiteLLM path it came from, by the longest known prefix.
func (t *litellm) remapPath(path string) string {
	for p := path; p != ""; {
		if to, ok := t.remap[p]; ok {
			return to
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return path
}

// lookup reads a variable from environment_variables, then the process.
func (t *litellm) lookup(name string) (string, bool) {
	if v, ok := t.env[name]; ok {
		return v, true
	}
	return os.LookupEnv(name)
}

const envPrefix = "os.environ/"

// str reads a string; os.environ/NAME becomes the reference ${NAME}.
func (t *litellm) str(n lnode) (string, bool) {
	switch v := n.v.(type) {
	case nil:
		return "", false
	case string:
		if name, ok := strings.CutPrefix(v, envPrefix); ok {
			return "${" + name + "}", true
		}
		return v, true
	case bool, uint64, int64, float64, int:
		return fmt.Sprint(v), true
	}
	t.fail(n, "want a string, not %T", n.v)
	return "", false
}

// resolved reads a value that is needed now (a number, a list): an
// os.environ/NAME reference is read from the environment.
func (t *litellm) resolved(n lnode) (any, bool) {
	s, ok := n.v.(string)
	if !ok {
		return n.v, n.v != nil
	}
	name, ok := strings.CutPrefix(s, envPrefix)
	if !ok {
		return s, true
	}
	v, ok := t.lookup(name)
	if !ok {
		t.fail(n, "environment variable %s is not set", name)
		return nil, false
	}
	return v, true
}

// num reads a number (an int, a float, or a string of one).
func (t *litellm) num(n lnode) (float64, bool) {
	v, ok := t.resolved(n)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case uint64:
		return float64(x), true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, true
		}
	}
	t.fail(n, "want a number, not %v", n.v)
	return 0, false
}

// count reads a non-negative whole number.
func (t *litellm) count(n lnode) (int, bool) {
	f, ok := t.num(n)
	if !ok {
		return 0, false
	}
	if f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
		t.fail(n, "want a whole number >= 0, not %v", n.v)
		return 0, false
	}
	return int(f), true
}

// seconds reads a duration in seconds (LiteLLM's unit for times).
func (t *litellm) seconds(n lnode) (time.Duration, bool) {
	f, ok := t.num(n)
	if !ok {
		return 0, false
	}
	if f < 0 {
		t.fail(n, "want seconds >= 0, not %v", n.v)
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

func (t *litellm) boolean(n lnode) (bool, bool) {
	v, ok := t.resolved(n)
	if !ok {
		return false, false
	}
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b, true
		}
	}
	t.fail(n, "want true or false, not %v", n.v)
	return false, false
}

// truthy reports whether n is set to something other than false, 0, "" or
// an empty list or map: a setting that asks for something.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != "" && !strings.EqualFold(x, "false")
	case uint64:
		return x != 0
	case int64:
		return x != 0
	case float64:
		return x != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}
