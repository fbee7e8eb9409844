// Package optiontest holds the check, shared by the packages' tests, that
// every option has a misuse row in its package's table test.
package optiontest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// optionFuncs lists the exported functions of this package (test files
// excluded) that return the named option type.
func optionFuncs(t testing.TB, typ string) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !fd.Name.IsExported() || fd.Type.Results == nil || len(fd.Type.Results.List) != 1 {
				continue
			}
			if id, ok := fd.Type.Results.List[0].Type.(*ast.Ident); ok && id.Name == typ {
				names = append(names, fd.Name.Name)
			}
		}
	}
	sort.Strings(names)
	return names
}

// RequireEveryOption fails t unless each exported function of the package
// in the current directory (the package under test) that returns typ is
// named by at least one of the refusal messages: a new option must come
// with a misuse row.
func RequireEveryOption(t testing.TB, typ string, messages []string) {
	t.Helper()
	all := strings.Join(messages, "\n")
	names := optionFuncs(t, typ)
	if len(names) == 0 {
		t.Fatalf("found no function returning %s", typ)
	}
	for _, n := range names {
		if !regexp.MustCompile(`\b` + n + `\b`).MatchString(all) {
			t.Errorf("no misuse row names %s", n)
		}
	}
}
