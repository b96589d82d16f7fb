package config

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// PrintModels returns the model file at path ("" for the built-in demo) written as Switchyard's own
// model file (worker --print-config): for a LiteLLM config, its translation,
// which loads and builds the same groups. The file is checked first, like
// LoadModels does.
//
// It never prints a credential: a secret written literally in the file
// becomes a ${VAR} reference, and the header names the variable to set;
// LiteLLM's environment_variables are named, never their values.
func PrintModels(path string) ([]byte, error) {
	src := []byte(DemoModels)
	if path != "" {
		var err error
		if src, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	} else {
		path = "built-in demo config"
	}
	checked, err := ParseModels(path, src)
	if err != nil {
		return nil, err
	}
	m, err := decodeModels(path, src)
	if err != nil {
		return nil, err
	}
	var head []string
	if lite, _ := isLiteLLM(path, src); lite {
		head = append(head, fmt.Sprintf("Switchyard model file, translated from the LiteLLM config %s (worker --print-config).", path),
			"Model names that are not group names (one NATS token of [a-z0-9_-]) are aliases: clients keep using them.")
	} else {
		head = append(head, fmt.Sprintf("Switchyard model file %s, as loaded (worker --print-config).", path))
	}
	if len(m.env) > 0 {
		head = append(head, "", "Set in the environment (the LiteLLM file's environment_variables set them):")
		for _, k := range slices.Sorted(maps.Keys(m.env)) {
			head = append(head, "  "+k)
		}
	}
	if lits := m.unliteral(); len(lits) > 0 {
		head = append(head, "", "Credentials written literally in the file are not printed; set these variables to them:")
		head = append(head, lits...)
	}
	if ns := checked.Notices(); len(ns) > 0 {
		head = append(head, "", "Accepted without effect:")
		for _, n := range ns {
			head = append(head, "  "+n.String())
		}
	}
	body, err := yaml.MarshalWithOptions(m, yaml.OmitZero(), yaml.Indent(2), yaml.IndentSequence(true),
		yaml.CustomMarshaler[Secret](func(s Secret) ([]byte, error) { return []byte(strconv.Quote(string(s))), nil }))
	if err != nil {
		return nil, fmt.Errorf("config: print %s: %w", path, err)
	}
	var b strings.Builder
	for _, l := range head {
		b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
	}
	b.WriteString("\n")
	b.Write(body)
	return []byte(b.String()), nil
}

var onlyRef = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*\}$`)

// unliteral replaces every secret that is not a ${VAR} reference by one,
// and returns a line per variable for the header.
func (m *Models) unliteral() []string {
	var lines []string
	swap := func(s *Secret, varName, what string) {
		if *s == "" || onlyRef.MatchString(string(*s)) {
			return
		}
		*s = Secret("${" + varName + "}")
		lines = append(lines, fmt.Sprintf("  %s: %s", varName, what))
	}
	envName := func(parts ...string) string {
		n := strings.ToUpper(strings.Join(parts, "_"))
		return regexp.MustCompile(`[^A-Z0-9_]+`).ReplaceAllString(n, "_")
	}
	for _, g := range m.groupNames() {
		for i, d := range m.Groups[g].Deployments {
			where := fmt.Sprintf("group %s, deployment %s", g, d.Name)
			id := fmt.Sprintf("%d", i)
			swap(&d.APIKey, envName("SWITCHYARD", g, id, "API_KEY"), "api_key of "+where)
			swap(&d.AWSAccessKeyID, envName("SWITCHYARD", g, id, "AWS_ACCESS_KEY_ID"), "aws_access_key_id of "+where)
			swap(&d.AWSSecretAccessKey, envName("SWITCHYARD", g, id, "AWS_SECRET_ACCESS_KEY"), "aws_secret_access_key of "+where)
			swap(&d.AWSSessionToken, envName("SWITCHYARD", g, id, "AWS_SESSION_TOKEN"), "aws_session_token of "+where)
			for _, h := range slices.Sorted(maps.Keys(d.Headers)) {
				v := d.Headers[h]
				swap(&v, envName("SWITCHYARD", g, id, "HEADER", h), "header "+h+" of "+where)
				d.Headers[h] = v
			}
		}
	}
	for _, t := range slices.Sorted(maps.Keys(m.Tenants)) {
		if m.Tenants[t] == nil {
			continue
		}
		for _, dep := range slices.Sorted(maps.Keys(m.Tenants[t].Keys)) {
			v := m.Tenants[t].Keys[dep]
			swap(&v, envName("SWITCHYARD_TENANT", t, dep, "KEY"), "key of tenant "+t+" for "+dep)
			m.Tenants[t].Keys[dep] = v
		}
	}
	return lines
}
