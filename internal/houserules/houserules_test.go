package houserules_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fzipp/gocyclo"
	"github.com/stretchr/testify/require"
)

const (
	maxLines      = 80 // .golangci.yml funlen.lines, comments not counted
	maxComplexity = 15 // .golangci.yml gocyclo.min-complexity, for pkg/policy
)

// root is the module's directory, two levels above this package.
var root = filepath.Join("..", "..")

// sources parses every Go file below dir that is not a test, not generated
// and not under testdata or a hidden directory.
func sources(t *testing.T, dir string) (*token.FileSet, []*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && p != dir && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata"):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go"):
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments)
		if err != nil {
			return err
		}
		if !ast.IsGenerated(f) {
			files = append(files, f)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return fset, files
}

// bodyLines counts the lines inside fn's braces, less those that hold only
// a comment, as funlen does with ignore-comments.
func bodyLines(fset *token.FileSet, f *ast.File, fn *ast.FuncDecl) int {
	first, last := fset.Position(fn.Body.Lbrace).Line, fset.Position(fn.Body.Rbrace).Line
	n := last - first - 1
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if c.Pos() < fn.Body.Lbrace || c.End() > fn.Body.Rbrace {
				continue
			}
			// a comment alone on its lines (not after code) does not count
			start := fset.Position(c.Pos())
			if start.Column == firstColumn(fset, f, start.Line) {
				n -= fset.Position(c.End()).Line - start.Line + 1
			}
		}
	}
	return n
}

// firstColumn is the column of the first non-blank character of line in f.
func firstColumn(fset *token.FileSet, f *ast.File, line int) int {
	tf := fset.File(f.Pos())
	src, err := os.ReadFile(tf.Name())
	if err != nil {
		return 0
	}
	start := tf.Offset(tf.LineStart(line))
	end := start
	for end < len(src) && (src[end] == ' ' || src[end] == '\t') {
		end++
	}
	return end - start + 1
}

// No function outside tests and generated code is over 80 lines.
func TestNoFunctionOver80Lines(t *testing.T) {
	fset, files := sources(t, root)
	for _, f := range files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			if n := bodyLines(fset, f, fn); n > maxLines {
				t.Errorf("%s: %s is %d lines (at most %d)", fset.Position(fn.Pos()), fn.Name.Name, n, maxLines)
			}
		}
	}
}

// No function of pkg/policy has a cyclomatic complexity over 15, as
// gocyclo (the library golangci-lint's gocyclo runs) measures it.
func TestPolicyComplexity(t *testing.T) {
	fset, files := sources(t, filepath.Join(root, "pkg", "policy"))
	var stats gocyclo.Stats
	for _, f := range files {
		stats = gocyclo.AnalyzeASTFile(f, fset, stats)
	}
	require.NotEmpty(t, stats)
	for _, s := range stats {
		if s.Complexity > maxComplexity {
			t.Errorf("%s: %s has cyclomatic complexity %d (at most %d)", s.Pos, s.FuncName, s.Complexity, maxComplexity)
		}
	}
}
