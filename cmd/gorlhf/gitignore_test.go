package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/recipe"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// TestGitignore_DefaultOutputs (issue 17): the folders commands write by
// default when run from a checkout (train's ./ckpt, the demos'
// gorlhf-demo and gorlhf-demo-arithmetic) are ignored by git.
func TestGitignore_DefaultOutputs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for _, dir := range []string{train.DefaultConfig().Ckpt.OutputDir, ppo.DefaultConfig().Ckpt.OutputDir,
		"gorlhf-demo", recipe.DefaultArithmeticDemo().OutputDir} {
		top := strings.Split(filepath.ToSlash(filepath.Clean(dir)), "/")[0]
		if !slices.Contains(lines, "/"+top+"/") {
			t.Errorf(".gitignore does not list /%s/ (default output %s)", top, dir)
		}
	}
}
