package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestArchitectureNamesEveryPackage: architecture.md lists every package of
// the repository (a directory with Go code in cmd/, internal/ or pkg/), so a
// package added without a line there fails here.
func TestArchitectureNamesEveryPackage(t *testing.T) {
	t.Parallel()
	doc := string(mustRead(t, "architecture.md"))
	var missing []string
	for _, root := range []string{"cmd", "internal", "pkg"} {
		err := filepath.WalkDir(filepath.Join("..", root), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || !hasGo(path) {
				return err
			}
			rel, _ := filepath.Rel("..", path)
			if name := filepath.ToSlash(rel); !strings.Contains(doc, "`"+name+"`") {
				missing = append(missing, name)
			}
			return nil
		})
		require.NoError(t, err)
	}
	slices.Sort(missing)
	require.Empty(t, missing, "architecture.md does not name these packages")
}

// hasGo reports whether dir holds Go code other than tests.
func hasGo(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			return true
		}
	}
	return false
}
