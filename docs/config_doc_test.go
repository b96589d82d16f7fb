package docs

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/config"
)

// TestConfigurationDocListsEveryKey: every key of the model file has a row
// in docs/configuration.md, so a key added to the config structs without
// documentation fails here.
func TestConfigurationDocListsEveryKey(t *testing.T) {
	t.Parallel()
	doc := string(mustRead(t, "configuration.md"))
	var missing []string
	for _, k := range config.KeyPaths() {
		if !strings.Contains(doc, "| `"+k+"` |") {
			missing = append(missing, k)
		}
	}
	require.Empty(t, missing, "configuration.md has no row for these model-file keys")
}

// TestConfigurationDocListsEveryVariable: every environment variable has a
// row with its default.
func TestConfigurationDocListsEveryVariable(t *testing.T) {
	t.Parallel()
	doc := string(mustRead(t, "configuration.md"))
	for _, v := range config.Variables() {
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(v.Name) + "` \\|.*$").FindString(doc)
		require.NotEmpty(t, row, "configuration.md has no row for %s", v.Name)
		if v.Default != "" {
			require.Contains(t, row, "`"+v.Default+"`", "the row of %s does not state its default", v.Name)
		}
		require.Contains(t, row, "| "+v.Type+" |", "the row of %s does not state its type (%s)", v.Name, v.Type)
	}
}
