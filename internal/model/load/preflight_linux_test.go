//go:build linux

package load

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// absurd writes stories260K as an HF folder whose config.json has key set
// to v.
func absurd(t *testing.T, key string, v any) string {
	t.Helper()
	l, err := Load(DefaultModel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	if err := Save(dir, l.Module(), l.Config, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	keys[key] = v
	raw, _ = json.Marshal(keys)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLoadHelperProcess is not a test: TestLoad_AbsurdConfig runs the
// test binary as a process that loads one folder under a 2 GiB address
// space limit, where allocating a model of 25 GB is a fatal error.
func TestLoadHelperProcess(t *testing.T) {
	dir := os.Getenv("GORLHF_LOAD_HELPER")
	if dir == "" {
		t.Skip("helper process for TestLoad_AbsurdConfig")
	}
	lim := uint64(2 << 30)
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(3)
	}
	_, err := Load(dir, Options{})
	fmt.Println("load error:", err)
	os.Exit(0)
}

// TestLoad_AbsurdConfig (issue 17, item 4): a config.json whose sizes do
// not fit the weights fails before any allocation, naming both shapes,
// in a real process with little memory (it used to die with "fatal
// error: out of memory" and a goroutine dump).
func TestLoad_AbsurdConfig(t *testing.T) {
	for _, c := range []struct {
		key  string
		v    any
		want []string
	}{
		{"vocab_size", 100000000, []string{`"model.embed_tokens.weight" has shape [512 64] but the config implies [100000000 64]`}},
		{"intermediate_size", 1 << 26, []string{"mlp.gate_proj.weight", "[67108864 64]"}},
		{"num_hidden_layers", 100000000, []string{`"model.layers.5.input_layernorm.weight" [64] is missing`}},
	} {
		t.Run(c.key, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestLoadHelperProcess$")
			cmd.Env = append(os.Environ(), "GORLHF_LOAD_HELPER="+absurd(t, c.key, c.v))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("the loading process failed (%v):\n%.2000s", err, out.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output does not say %q:\n%s", w, out.String())
				}
			}
		})
	}
}
