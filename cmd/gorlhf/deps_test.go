package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinary_LinksNoTestHelpers: the binary must not link the test-helper
// packages (they hold golden files and finite-difference checks, and pull
// in what only tests need). It asks the go tool for the import graph.
func TestBinary_LinksNoTestHelpers(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to list the binary's packages: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !strings.Contains(string(out), "github.com/gorlhf/gorlhf/internal/tensor\n") {
		t.Fatalf("go list -deps gave %d packages, not the binary's graph:\n%s", len(deps), out)
	}
	for _, p := range deps {
		if strings.HasSuffix(p, "/tensortest") || strings.HasSuffix(p, "/modeltest") {
			t.Errorf("the binary links the test helper %s", p)
		}
	}
}
