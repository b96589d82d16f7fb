package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// APIKey is one HTTP gateway key, listed hashed: the key itself never
// appears in the model file. `submit keys hash` prints the line for a key.
//
//	api_keys:
//	  - sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
//	    tenant: acme   # omit for the anonymous tenant
//	    name: acme-prod
//	  - sha256: ...
//	    admin: true    # may call the gateway's /admin endpoints
type APIKey struct {
	SHA256 string `yaml:"sha256"`
	Tenant string `yaml:"tenant"`
	Admin  bool   `yaml:"admin"`
	Name   string `yaml:"name"`
}

func (m *Models) validateAPIKeys() error {
	var errs []error
	seen := map[string]bool{}
	for i, k := range m.APIKeys {
		p := fmt.Sprintf("$.api_keys[%d]", i)
		h := strings.ToLower(strings.TrimPrefix(k.SHA256, "sha256:"))
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			errs = append(errs, m.errAt(p+".sha256", "want the key's SHA-256 as 64 hex digits (submit keys hash prints it), not the key"))
		}
		if seen[h] {
			errs = append(errs, m.errAt(p+".sha256", "the same key is listed twice"))
		}
		seen[h] = true
		if k.Tenant != "" {
			if _, ok := m.Tenants[k.Tenant]; !ok {
				errs = append(errs, m.errAt(p+".tenant", "no tenant %q is configured under tenants:", k.Tenant))
			}
		}
	}
	return errors.Join(errs...)
}

// KeyHash returns the key's hash as "sha256:<lower-case hex>".
func (k APIKey) KeyHash() string {
	return "sha256:" + strings.ToLower(strings.TrimPrefix(k.SHA256, "sha256:"))
}

// LoadGatewayModels reads what the HTTP gateway needs of a model file (the
// groups, aliases, tenants and API keys), checked as the worker checks it
// but without the providers' secrets: a gateway runs without them, so
// ${VAR} references need not be set. Path "" loads the demo file.
func LoadGatewayModels(path string) (*Models, error) {
	return loadModels(path, func(string) (string, bool) { return "unset-in-the-gateway", true })
}
