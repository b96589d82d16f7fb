package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// busConsts returns the values of pkg/bus's string constants of the given
// type ("" for untyped ones whose name starts with namePrefix).
func busConsts(t *testing.T, typ, namePrefix string) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, "../pkg/bus", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	require.NoError(t, err)
	var out []string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, sp := range gd.Specs {
					vs := sp.(*ast.ValueSpec)
					id, _ := vs.Type.(*ast.Ident)
					for i, name := range vs.Names {
						if i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue
						}
						if (typ != "" && id != nil && id.Name == typ) || (typ == "" && strings.HasPrefix(name.Name, namePrefix)) {
							v, _ := strconv.Unquote(lit.Value)
							out = append(out, v)
						}
					}
				}
			}
		}
	}
	require.NotEmpty(t, out, "no constants of type %q / prefix %q", typ, namePrefix)
	return out
}

// TestWireDocNamesEverything: every field of the three messages, every
// error code, event type and header of pkg/bus is in docs/wire.md, so that
// one added to the code without a word here fails.
func TestWireDocNamesEverything(t *testing.T) {
	t.Parallel()
	doc := string(mustRead(t, "wire.md"))
	for _, w := range wireTypes {
		for name := range jsonFields(w.typ) {
			require.True(t, strings.Contains(doc, "`"+name+"`"), "wire.md does not name %s's field `%s`", w.typ, name)
		}
	}
	for _, c := range busConsts(t, "ErrorCode", "") {
		require.True(t, regexp.MustCompile("(?m)^\\| `"+regexp.QuoteMeta(c)+"` \\|").MatchString(doc), "error code %s is not in the table of wire.md", c)
	}
	for _, e := range busConsts(t, "EventType", "") {
		require.True(t, strings.Contains(doc, "`"+e+"`"), "wire.md does not name event type `%s`", e)
	}
	for _, h := range busConsts(t, "", "Header") {
		require.True(t, strings.Contains(doc, "`"+h+"`"), "wire.md does not name header `%s`", h)
	}
}

// TestDocLinksResolve: every relative link of the documents points at a
// file of the repository, and none leaves it (the README once linked
// ../shared/DESIGN.md, which a clone does not have).
func TestDocLinksResolve(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.md")
	require.NoError(t, err)
	files = append(files, "../README.md", "../deployments/README.md")
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	for _, f := range files {
		for _, m := range link.FindAllStringSubmatch(string(mustRead(t, f)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			abs, err := filepath.Abs(filepath.Join(filepath.Dir(f), target))
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(abs, root+string(filepath.Separator)) || abs == root, "%s links outside the repository: %s", f, target)
			_, err = os.Stat(abs)
			require.NoError(t, err, "%s links to a missing file: %s", f, target)
		}
	}
}
