package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Models is the model file: the groups a fleet serves.
type Models struct {
	Groups map[string]*Group `yaml:"groups"`
	// Tenants have their own keys and budgets; see Tenant.
	Tenants map[string]*Tenant `yaml:"tenants"`
	// UnknownTenants says what jobs on the anonymous (v1) subjects,
	// llm.req.<group>, run as: "deny" (refused), "anonymous" (the
	// deployments' own keys, no budget) or the name of a tenant (its keys
	// and budget). Default: anonymous with no tenants, deny with tenants.
	UnknownTenants string `yaml:"unknown_tenants"`
	// Aliases are other names of groups, for clients that name a model (the
	// HTTP gateway's `model`); see Alias and Resolve.
	Aliases map[string]Alias `yaml:"aliases"`
	// APIKeys are the HTTP gateway's keys, listed hashed; see APIKey.
	APIKeys []APIKey `yaml:"api_keys"`

	path string
	src  []byte
	// remap turns a YAML path of this model into one of src, for files
	// translated from another format (see litellm.go); nil: the identity.
	remap func(path string) string
	// notices name what the file said that has no effect here.
	notices []Notice
	// env holds variables the file itself sets (LiteLLM's
	// environment_variables), read before the process environment.
	env map[string]string
	// unlisted are groups whose own names ModelNames hides (those a
	// LiteLLM model_name was mapped to).
	unlisted map[string]bool
}

// Notice names a key of the model file that was accepted but has no effect
// here, and why; the worker logs each once at start.
type Notice struct {
	Key    string // its path in the file, e.g. litellm_settings.success_callback
	Line   int    // 0 when unknown
	Reason string
}

func (n Notice) String() string {
	if n.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", n.Line, n.Key, n.Reason)
	}
	return n.Key + ": " + n.Reason
}

// Notices lists the file's keys that have no effect here (none for a
// native model file), in file order.
func (m *Models) Notices() []Notice { return m.notices }

// Group is a model group: its routing and resilience options (policy's, inline)
// and its deployments.
type Group struct {
	policy.GroupOptions `yaml:",inline"`
	// Priority is the class of the jobs published on the group's bare
	// subject (llm.req.<group>): interactive, default or batch. Jobs on
	// the class subjects (llm.req.<group>.interactive, ...) are of their
	// subject's class whatever it says. Default: default.
	Priority    bus.Priority  `yaml:"priority"`
	Deployments []*Deployment `yaml:"deployments"`
}

// Deployment is one provider + model. Provider-specific keys are checked
// against the provider: a key another provider uses is refused.
type Deployment struct {
	Name     string `yaml:"name"`
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`

	policy.DeploymentOptions `yaml:",inline"`

	// Credentials and endpoints; ${VAR} references are resolved from the
	// environment at load time.
	APIKey       Secret            `yaml:"api_key"`
	BaseURL      string            `yaml:"base_url"`
	Organization string            `yaml:"organization"`
	Project      string            `yaml:"project"`
	Headers      map[string]Secret `yaml:"headers"`

	// Azure OpenAI.
	Endpoint        string `yaml:"endpoint"`
	AzureDeployment string `yaml:"azure_deployment"`
	APIVersion      string `yaml:"api_version"`

	// Gemini / Vertex AI (and Claude on Vertex).
	Location string `yaml:"location"`

	// Claude on Amazon Bedrock: the AWS region (default: AWS_REGION, then
	// AWS_DEFAULT_REGION) and static credentials. When aws_access_key_id is
	// not set, all three come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
	// and AWS_SESSION_TOKEN.
	Region             string `yaml:"region"`
	AWSAccessKeyID     Secret `yaml:"aws_access_key_id"`
	AWSSecretAccessKey Secret `yaml:"aws_secret_access_key"`
	AWSSessionToken    Secret `yaml:"aws_session_token"`

	// MaxTokens is the default max_tokens (Anthropic requires one).
	MaxTokens int `yaml:"max_tokens"`

	// The model's overrides (context_window, max_output,
	// input/output_cost_per_mtok, supports_*) are in the inline policy
	// options: the router resolves them into its record of the model.

	// Params are default request parameters (temperature, max_tokens, ...)
	// for requests that do not set them.
	Params *Params `yaml:"params"`

	// Mock provider settings.
	Mock *mock.Config `yaml:"mock"`

	path string // YAML path, for errors
}

// DemoModels is the built-in model file used when none is given: a "demo"
// group on the mock provider that streams at a readable pace.
const DemoModels = `
groups:
  demo:
    # interactive jobs: a first token later than the primary's p90 (at least
    # 300ms) is raced on mock-backup
    hedge: {percentile: 90, min_delay: 300ms}
    deployments:
      - name: mock-primary
        provider: mock
        model: mock-1
        mock: {tokens: 40, ttft: 150ms, chunk_delay: 40ms}
      - name: mock-backup
        provider: mock
        model: mock-1
        priority: 1
        mock: {tokens: 40, ttft: 150ms, chunk_delay: 40ms, seed: 7}
`

// LoadModels reads a model file; path "" loads DemoModels.
func LoadModels(path string) (*Models, error) { return loadModels(path, os.LookupEnv) }

func loadModels(path string, lookup func(string) (string, bool)) (*Models, error) {
	src := []byte(DemoModels)
	name := "built-in demo config"
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		src, name = b, path
	}
	return parseModels(name, src, lookup)
}

// ParseModels parses and checks a model file; name is used in errors. A
// LiteLLM proxy config.yaml (known by its top-level keys) is translated into
// the same model; see litellm.go and docs/litellm.md.
func ParseModels(name string, src []byte) (*Models, error) {
	return parseModels(name, src, os.LookupEnv)
}

func parseModels(name string, src []byte, env func(string) (string, bool)) (*Models, error) {
	m, err := decodeModels(name, src)
	if err != nil {
		return nil, err
	}
	// ${VAR}: the file's own variables (LiteLLM's environment_variables),
	// then the environment.
	lookup := func(name string) (string, bool) {
		if v, ok := m.env[name]; ok {
			return v, true
		}
		return env(name)
	}
	if err := errors.Join(m.resolve(lookup), m.resolveTenants(lookup)); err != nil {
		return nil, err
	}
	if err := errors.Join(m.validate(), m.validateTenants(), m.validateAliases(), m.validateAPIKeys()); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeModels reads a model file without resolving its secrets.
func decodeModels(name string, src []byte) (*Models, error) {
	lite, err := isLiteLLM(name, src)
	if err != nil {
		return nil, err
	}
	if lite {
		return parseLiteLLM(name, src)
	}
	m := &Models{path: name, src: src}
	dec := yaml.NewDecoder(bytes.NewReader(src), yaml.DisallowUnknownField())
	if err := dec.Decode(m); err != nil {
		return nil, m.decodeError(err)
	}
	return m, nil
}

// errAt names the file, line and key of a bad value.
func (m *Models) errAt(path, format string, args ...any) error {
	if m.remap != nil {
		path = m.remap(path)
	}
	line := ""
	// A key that is missing is named with the line of its parent.
	for p := path; line == "" && p != "$" && p != ""; {
		if yp, err := yaml.PathString(p); err == nil {
			if n, err := yp.ReadNode(bytes.NewReader(m.src)); err == nil && n != nil && n.GetToken() != nil {
				line = fmt.Sprintf(":%d", n.GetToken().Position.Line)
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	key := strings.TrimPrefix(path, "$.")
	return fmt.Errorf("config: %s%s: %s: %s", m.path, line, key, fmt.Sprintf(format, args...))
}

var optionKey = regexp.MustCompile(`^([a-z_]+(?:\.[a-z_]+)*): (.*)$`)

// optionErr places a policy option's error ("strategy: unknown ...") at its
// key, under the group or deployment at path.
func (m *Models) optionErr(path string, err error) error {
	if sm := optionKey.FindStringSubmatch(err.Error()); sm != nil {
		return m.errAt(path+"."+sm[1], "%s", sm[2])
	}
	return m.errAt(path, "%v", err)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} references; an unset variable is an error.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// expandSecret is expand for a credential, which must not come out empty:
// an empty key would only fail later, at the vendor, with no name on it.
func expandSecret(s string, lookup func(string) (string, bool)) (string, error) {
	out, err := expand(s, lookup)
	if err == nil && out == "" && s != "" {
		var names []string
		for _, m := range envRef.FindAllStringSubmatch(s, -1) {
			names = append(names, m[1])
		}
		return "", fmt.Errorf("environment variable %s is set but empty", strings.Join(names, ", "))
	}
	return out, err
}

func (m *Models) resolve(lookup func(string) (string, bool)) error {
	var errs []error

	for _, gname := range m.groupNames() {
		for i, d := range m.Groups[gname].Deployments {
			if d == nil {
				continue
			}
			d.path = fmt.Sprintf("$.groups.%s.deployments[%d]", gname, i)
			for key, p := range map[string]*string{
				"base_url": &d.BaseURL, "organization": &d.Organization, "project": &d.Project,
				"endpoint": &d.Endpoint, "azure_deployment": &d.AzureDeployment, "location": &d.Location,
				"model": &d.Model, "region": &d.Region,
			} {
				v, err := expand(*p, lookup)
				if err != nil {
					errs = append(errs, m.errAt(d.path+"."+key, "%v", err))
				}
				*p = v
			}
			for key, p := range map[string]*Secret{
				"api_key": &d.APIKey, "aws_access_key_id": &d.AWSAccessKeyID,
				"aws_secret_access_key": &d.AWSSecretAccessKey, "aws_session_token": &d.AWSSessionToken,
			} {
				v, err := expandSecret(p.Reveal(), lookup)
				if err != nil {
					errs = append(errs, m.errAt(d.path+"."+key, "%v", err))
				}
				*p = Secret(v)
			}
			for h, hv := range d.Headers {
				v, err := expandSecret(hv.Reveal(), lookup)
				if err != nil {
					errs = append(errs, m.errAt(d.path+".headers."+h, "%v", err))
				}
				d.Headers[h] = Secret(v)
			}
		}
	}
	return errors.Join(errs...)
}

func (m *Models) groupNames() []string {
	names := make([]string, 0, len(m.Groups))
	for n := range m.Groups {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Classes maps each group whose priority is set to the class of the jobs
// on its bare subject.
func (m *Models) Classes() map[string]bus.Priority {
	out := map[string]bus.Priority{}
	for n, g := range m.Groups {
		if g != nil && g.Priority != "" {
			out[n] = g.Priority
		}
	}
	return out
}

// GroupNames returns the names of the groups, sorted.
func (m *Models) GroupNames() []string { return m.groupNames() }

func (m *Models) validate() error {
	var errs []error
	if len(m.Groups) == 0 {
		return m.errAt("$.groups", "at least one group is required")
	}
	inGroup := map[string]string{} // deployment name -> its group
	for _, gname := range m.groupNames() {
		g := m.Groups[gname]
		gp := "$.groups." + gname
		if !bus.ValidGroup(gname) {
			errs = append(errs, m.errAt(gp, "group name %q must be one token of [a-z0-9_-]", gname))
		}
		if g == nil || len(g.Deployments) == 0 {
			errs = append(errs, m.errAt(gp, "at least one deployment is required"))
			continue
		}
		if err := g.GroupOptions.Validate(); err != nil {
			errs = append(errs, m.optionErr(gp, err))
		}
		if g.Priority != "" && !bus.ValidPriority(g.Priority) {
			errs = append(errs, m.errAt(gp+".priority", "priority %q is not one of interactive, default, batch", g.Priority))
		}
		for _, fb := range slices.Concat(g.Fallbacks, g.ContextWindowFallbacks, g.ContentPolicyFallbacks) {
			if _, ok := m.Groups[fb]; !ok {
				errs = append(errs, m.errAt(gp, "fallback group %q is not defined", fb))
			}
		}
		seen := map[string]bool{}
		for i, d := range g.Deployments {
			if d != nil && d.Name != "" && !seen[d.Name] {
				if other, ok := inGroup[d.Name]; ok {
					errs = append(errs, m.errAt(fmt.Sprintf("%s.deployments[%d].name", gp, i),
						"deployment %q is also in group %q: names are fleet-wide (tenant keys, breakers, rate limits and metrics refer to them), give each its own", d.Name, other))
				} else {
					inGroup[d.Name] = gname
				}
			}
			dp := fmt.Sprintf("%s.deployments[%d]", gp, i)
			if d == nil {
				errs = append(errs, m.errAt(dp, "empty deployment"))
				continue
			}
			if d.Name == "" {
				errs = append(errs, m.errAt(dp, "name is required"))
			} else if seen[d.Name] {
				errs = append(errs, m.errAt(dp+".name", "deployment %q appears twice in the group", d.Name))
			}
			seen[d.Name] = true
			if err := d.DeploymentOptions.Validate(); err != nil {
				errs = append(errs, m.optionErr(dp, err))
			}
			if err := d.check(); err != nil {
				errs = append(errs, m.errAt(dp+"."+err.key, "%s", err.msg))
			} else if msg := d.missingKey(); msg != "" {
				errs = append(errs, m.errAt(dp, "%s", msg))
			}
			if d.Params != nil {
				if err := d.Params.check(); err != nil {
					errs = append(errs, m.errAt(dp+"."+err.key, "%s", err.msg))
				}
			}
		}
	}
	return errors.Join(errs...)
}

type keyErr struct{ key, msg string }

// Build creates the providers and returns the router's groups. Providers make
// no network call here.
func (m *Models) Build(ctx context.Context) ([]policy.Group, error) {
	var groups []policy.Group
	var errs []error
	for _, gname := range m.groupNames() {
		g := m.Groups[gname]
		pg := policy.Group{Name: gname, Options: g.GroupOptions}
		for _, d := range g.Deployments {
			p, err := d.provider(ctx)
			if err != nil {
				errs = append(errs, m.errAt(d.path+".provider", "%v", err))
				continue
			}
			pg.Deployments = append(pg.Deployments, policy.Deployment{Name: d.Name, Model: d.Model, Provider: p, Options: d.DeploymentOptions})
		}
		groups = append(groups, pg)
	}
	return groups, errors.Join(errs...)
}

// provider builds the deployment's provider, with its default parameters.
func (d *Deployment) provider(ctx context.Context) (llm.Provider, error) {
	p, err := d.build(ctx)
	if err != nil || d.Params == nil {
		return p, err
	}
	return withParams{p: p, params: *d.Params}, nil
}
