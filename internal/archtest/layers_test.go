// Package archtest holds no code, only a test: it checks the package layers
// drawn under "## Dependency rule" in docs/ARCHITECTURE.md against the
// imports go list reports, so the picture stays true as the code moves.
package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/gorlhf/gorlhf"

// docPath is the page that draws the layers, relative to the module root.
const docPath = "docs/ARCHITECTURE.md"

// platforms are the build contexts whose imports are checked: the host's
// (empty GOOS/GOARCH), and two that select the files the host leaves out
// (!amd64, !linux, !unix variants).
var platforms = []struct{ goos, goarch string }{
	{"", ""},
	{"darwin", "arm64"},
	{"windows", "amd64"},
}

// Layers is the diagram: each package's row (0 is the top) and which
// packages are test helpers.
type Layers struct {
	Row    map[string]int
	Helper map[string]bool
}

// helperRe matches a parenthesised note: "(a, b/c: what they are)".
var helperRe = regexp.MustCompile(`\(([^()]*)\)`)

// ParseLayers reads the first fenced block after the "## Dependency rule"
// heading of an ARCHITECTURE.md: one row per line, top row first, names
// separated by spaces, "a/{b,c}" standing for a/b and a/c, and names
// before the colon of a parenthesised note being test helpers.
func ParseLayers(doc string) (Layers, error) {
	block, err := fencedBlock(doc, "## Dependency rule")
	if err != nil {
		return Layers{}, err
	}
	l := Layers{Row: map[string]int{}, Helper: map[string]bool{}}
	var errs []error
	row := 0
	for _, line := range block {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var names []string
		var helpers []string
		for _, m := range helperRe.FindAllStringSubmatch(line, -1) {
			list, _, _ := strings.Cut(m[1], ":")
			for h := range strings.SplitSeq(list, ",") {
				helpers = append(helpers, strings.TrimSpace(h))
			}
		}
		names = strings.Fields(helperRe.ReplaceAllString(line, " "))
		for i, group := range [][]string{names, helpers} {
			for _, g := range group {
				exp, err := expand(g)
				if err != nil {
					errs = append(errs, fmt.Errorf("row %d: %w", row+1, err))
					continue
				}
				for _, n := range exp {
					if prev, dup := l.Row[n]; dup {
						errs = append(errs, fmt.Errorf("row %d: %s is already on row %d", row+1, n, prev+1))
						continue
					}
					l.Row[n] = row
					l.Helper[n] = i == 1
				}
			}
		}
		row++
	}
	if row == 0 {
		errs = append(errs, errors.New("the dependency diagram has no rows"))
	}
	return l, errors.Join(errs...)
}

// fencedBlock returns the lines of the first ``` block after heading.
func fencedBlock(doc, heading string) ([]string, error) {
	lines := strings.Split(doc, "\n")
	start := slices.IndexFunc(lines, func(s string) bool { return strings.TrimSpace(s) == heading })
	if start < 0 {
		return nil, fmt.Errorf("no %q heading", heading)
	}
	var block []string
	in := false
	for _, s := range lines[start+1:] {
		switch {
		case strings.HasPrefix(s, "## ") && !in:
			return nil, fmt.Errorf("no fenced block under %q", heading)
		case strings.HasPrefix(s, "```") && !in:
			in = true
		case strings.HasPrefix(s, "```"):
			return block, nil
		case in:
			block = append(block, s)
		}
	}
	return nil, fmt.Errorf("no closed fenced block under %q", heading)
}

// nameRe is one package name after expansion: a path under internal/, or
// under the module root for cmd/….
var nameRe = regexp.MustCompile(`^[a-z0-9_]+(/[a-z0-9_]+)*$`)

// expand turns "a/{b,c}/d" into a/b/d and a/c/d.
func expand(s string) ([]string, error) {
	i := strings.IndexByte(s, '{')
	if i < 0 {
		if !nameRe.MatchString(s) {
			return nil, fmt.Errorf("%q is not a package name", s)
		}
		return []string{s}, nil
	}
	j := strings.IndexByte(s[i:], '}')
	if j < 0 {
		return nil, fmt.Errorf("%q: unclosed {", s)
	}
	var out []string
	for alt := range strings.SplitSeq(s[i+1:i+j], ",") {
		more, err := expand(s[:i] + strings.TrimSpace(alt) + s[i+j+1:])
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// name is the diagram's name for an import path of the module (the path
// under internal/, or under the module root elsewhere) and false for
// packages of other modules.
func name(importPath string) (string, bool) {
	rest, ok := strings.CutPrefix(importPath, module+"/")
	if !ok {
		return "", false
	}
	if r, ok := strings.CutPrefix(rest, "internal/"); ok {
		return r, true
	}
	return rest, true
}

// Graph maps each package of the module that has non-test Go files (by its
// diagram name) to the module packages its non-test files import, and each
// import to the first platform it was seen on.
type Graph map[string]map[string]string

// Check lists every way g breaks the layers, one sentence each, sorted:
// a package missing from the diagram, a name in the diagram that is no
// package, an import of a package on the same or a higher row, and an
// import of a test helper from a package that is not one.
func Check(l Layers, g Graph) []string {
	var bad []string
	for p := range g {
		if _, ok := l.Row[p]; !ok {
			bad = append(bad, fmt.Sprintf("%s is not in the diagram: put it on a row above every package it imports", p))
		}
	}
	for n := range l.Row {
		if _, ok := g[n]; !ok {
			bad = append(bad, fmt.Sprintf("%s is in the diagram but is no package of the module", n))
		}
	}
	for p, imports := range g {
		rp, ok := l.Row[p]
		if !ok {
			continue
		}
		for q, where := range imports {
			rq, ok := l.Row[q]
			if !ok {
				continue // reported as missing above
			}
			on := ""
			if where != "" {
				on = " (on " + where + ")"
			}
			switch {
			case rq < rp:
				bad = append(bad, fmt.Sprintf("%s (row %d) imports %s, which is above it (row %d)%s", p, rp+1, q, rq+1, on))
			case rq == rp:
				bad = append(bad, fmt.Sprintf("%s imports %s, which is on its own row (%d)%s", p, q, rp+1, on))
			}
			if l.Helper[q] && !l.Helper[p] {
				bad = append(bad, fmt.Sprintf("%s imports the test helper %s outside its tests%s", p, q, on))
			}
		}
	}
	slices.Sort(bad)
	return bad
}

// TestLayers checks the module's non-test imports, on every platform in
// platforms, against the diagram in docs/ARCHITECTURE.md.
func TestLayers(t *testing.T) {
	root := moduleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, docPath))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLayers(string(doc))
	if err != nil {
		t.Fatalf("%s: %v", docPath, err)
	}
	g := Graph{}
	for i, pl := range platforms {
		where := ""
		if pl.goos != "" {
			where = pl.goos + "/" + pl.goarch
		}
		pkgs := goList(t, root, pl.goos, pl.goarch)
		for _, p := range pkgs {
			from, ok := name(p.ImportPath)
			if !ok || len(p.GoFiles)+len(p.CgoFiles) == 0 {
				continue // not ours, or a test-only package such as this one
			}
			if g[from] == nil {
				if i > 0 {
					t.Logf("%s has Go files only on %s", from, where)
				}
				g[from] = map[string]string{}
			}
			for _, imp := range p.Imports {
				if to, ok := name(imp); ok {
					if _, seen := g[from][to]; !seen {
						g[from][to] = where
					}
				}
			}
		}
	}
	for _, b := range Check(l, g) {
		t.Errorf("%s: %s", docPath, b)
	}
	t.Logf("%d packages on %d rows", len(g), slices.Max(slices.Collect(maps.Values(l.Row)))+1)
}

// TestCheck runs Check on a made-up graph with one fault of each kind and
// on the same graph without them.
func TestCheck(t *testing.T) {
	const doc = "intro\n\n## Dependency rule\n\nprose\n\n```\n" +
		"cmd/app\n" +
		"trainer/{sft,rm}   serve\n" +
		"model   (model/modeltest: test helper)\n" +
		"(tensor/tensortest, x/y: test helpers)\n" +
		"tensor\n" +
		"```\n\n## Next\n"
	l, err := ParseLayers(doc)
	if err != nil {
		t.Fatal(err)
	}
	wantRows := map[string]int{
		"cmd/app": 0, "trainer/sft": 1, "trainer/rm": 1, "serve": 1,
		"model": 2, "model/modeltest": 2, "tensor/tensortest": 3, "x/y": 3, "tensor": 4,
	}
	if !maps.Equal(l.Row, wantRows) {
		t.Fatalf("rows %v, want %v", l.Row, wantRows)
	}
	for _, h := range []string{"model/modeltest", "tensor/tensortest", "x/y"} {
		if !l.Helper[h] {
			t.Errorf("%s is not a helper", h)
		}
	}
	good := func() Graph {
		return Graph{
			"cmd/app":           {"trainer/sft": "", "trainer/rm": "", "serve": "", "tensor": ""},
			"trainer/sft":       {"model": ""},
			"trainer/rm":        {"model": "", "tensor": ""},
			"serve":             {"model": ""},
			"model":             {"tensor": ""},
			"model/modeltest":   {"tensor/tensortest": "", "tensor": ""},
			"tensor":            {},
			"tensor/tensortest": {"tensor": ""},
			"x/y":               {},
		}
	}
	if bad := Check(l, good()); len(bad) != 0 {
		t.Fatalf("a valid graph broke the layers: %q", bad)
	}
	g := good()
	g["model"]["trainer/sft"] = ""                 // up
	g["trainer/sft"]["serve"] = "darwin/arm64"     // same row, on one platform
	g["serve"]["model/modeltest"] = ""             // a helper outside tests
	g["generate"] = map[string]string{"model": ""} // missing
	delete(g, "x/y")                               // stale
	want := []string{
		"generate is not in the diagram: put it on a row above every package it imports",
		"model (row 3) imports trainer/sft, which is above it (row 2)",
		"serve imports the test helper model/modeltest outside its tests",
		"trainer/sft imports serve, which is on its own row (2) (on darwin/arm64)",
		"x/y is in the diagram but is no package of the module",
	}
	if bad := Check(l, g); !slices.Equal(bad, want) {
		t.Errorf("Check =\n%s\nwant\n%s", strings.Join(bad, "\n"), strings.Join(want, "\n"))
	}
}

// TestParseLayersErrors refuses diagrams that cannot be read one way.
func TestParseLayersErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"## Other\n```\na\n```\n", "no \"## Dependency rule\" heading"},
		{"## Dependency rule\ntext\n## Next\n```\na\n```\n", "no fenced block"},
		{"## Dependency rule\n```\na\n", "no closed fenced block"},
		{"## Dependency rule\n```\n```\n", "no rows"},
		{"## Dependency rule\n```\na   b\nc   a\n```\n", "row 2: a is already on row 1"},
		{"## Dependency rule\n```\na/{b,c\n```\n", "unclosed {"},
		{"## Dependency rule\n```\na -> b\n```\n", `"->" is not a package name`},
	} {
		_, err := ParseLayers(tc.doc)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseLayers(%q) = %v, want an error containing %q", tc.doc, err, tc.want)
		}
	}
}

// listed is what go list -json reports of one package.
type listed struct {
	ImportPath string
	Imports    []string
	GoFiles    []string
	CgoFiles   []string
	Error      *struct{ Err string }
}

// goList lists the module's packages for one platform (empty: the host).
func goList(t *testing.T, root, goos, goarch string) []listed {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts its own go first on PATH
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool, "list", "-e", "-json=ImportPath,Imports,GoFiles,CgoFiles,Error", "./...")
	cmd.Dir = root
	if goos != "" {
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	}
	platform := "host"
	if goos != "" {
		platform = goos + "/" + goarch
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list (%s): %v\n%s", platform, err, stderr.Bytes())
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list (%s): %v", platform, err)
		}
		if p.Error != nil && len(p.GoFiles) > 0 {
			t.Fatalf("go list (%s): %s: %s", platform, p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list (%s) listed no packages", platform)
	}
	return pkgs
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		t.Fatal("go env GOMOD: not in a module")
	}
	return filepath.Dir(mod)
}
