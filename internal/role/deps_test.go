package role

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// heavy are the packages that load, hold or run models, or read files
// and tokenizers: what the plain-data packages must not pull in.
var heavy = []string{
	"assets", "chattmpl", "data", "generate", "hub", "llama2c", "model", "nn", "optim",
	"reward/rmodel", "role/inproc", "safetensors", "serve", "tokenizer", "train", "trainer",
}

// TestDeps keeps role (the messages of the RL roles) and env (the agent
// environments) light, as go list sees them: no model stack, no engine,
// no loader. env does without the tensor engine too; role reaches it only
// through rl, whose loss settings its messages carry.
func TestDeps(t *testing.T) {
	for _, tc := range []struct {
		pkg       string
		forbidden []string
	}{
		{"role", heavy},
		{"env", append(slices.Clone(heavy), "tensor", "gemm", "rl")},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			deps := internalDeps(t, tc.pkg)
			for _, d := range deps {
				for _, f := range tc.forbidden {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("internal/%s depends on internal/%s", tc.pkg, d)
					}
				}
			}
			t.Logf("internal/%s: %d internal packages: %s", tc.pkg, len(deps), strings.Join(deps, " "))
		})
	}
}

// internalDeps lists the module's packages that internal/pkg depends on,
// itself included, relative to internal/ (go list -deps).
func internalDeps(t *testing.T, pkg string) []string {
	t.Helper()
	const prefix = "github.com/gorlhf/gorlhf/internal/"
	goTool, err := exec.LookPath("go") // go test puts its own go first on PATH
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", prefix+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	var deps []string
	for _, p := range strings.Fields(string(out)) {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			deps = append(deps, rest)
		}
	}
	if !slices.Contains(deps, pkg) {
		t.Fatalf("go list -deps %s did not list the package itself: %q", pkg, out)
	}
	return deps
}
