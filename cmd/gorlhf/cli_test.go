package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// gorlhfProcess runs the test binary as gorlhf (TestMain) with args and
// returns its exit status, stdout and stderr.
func gorlhfProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), asBinaryEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// TestCLI_Usage (issue 17): `gorlhf` alone prints its usage on stderr and
// exits 2, as an unknown command does; --help prints it on stdout, 0.
func TestCLI_Usage(t *testing.T) {
	for _, c := range []struct {
		args     []string
		status   int
		inStderr string
	}{
		{nil, 2, "Usage: gorlhf <command>"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"--help"}, 0, ""},
	} {
		status, stdout, stderr := gorlhfProcess(t, c.args...)
		if status != c.status || !strings.Contains(stderr, c.inStderr) {
			t.Errorf("gorlhf %v: status %d, stderr %q; want %d and %q", c.args, status, stderr, c.status, c.inStderr)
		}
		if c.status == 0 && !strings.Contains(stdout, "Usage: gorlhf <command>") {
			t.Errorf("gorlhf %v: stdout %q", c.args, stdout)
		}
	}
}

// TestGenerate_ZeroCounts (issue 17, item 10): --n 0 and
// --max-new-tokens 0 are refused, as the server refuses n 0 and
// max_tokens 0, instead of becoming 1 and 256.
func TestGenerate_ZeroCounts(t *testing.T) {
	for _, c := range []struct{ flag, want string }{{"--n", "--n must be ≥ 1, got 0"}, {"--max-new-tokens", "--max-new-tokens must be ≥ 1, got 0"}} {
		err := run(context.Background(), []string{"generate", "--prompt", "Once", c.flag, "0", "--threads", "1"}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s 0: %v, want %q", c.flag, err, c.want)
		}
	}
}

// TestTokenize_EmbeddedName (issue 17, item 10): tokenize accepts the
// embedded model's name, as every command that takes a model does.
func TestTokenize_EmbeddedName(t *testing.T) {
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		t.Fatal(err)
	}
	status, stdout, stderr := gorlhfProcess(t, "tokenize", "--tokenizer", "stories260K", "Once upon a time")
	want := strings.ReplaceAll(fmt.Sprint(tok.Encode("Once upon a time")), " ", ",")
	if status != 0 || strings.TrimSpace(stdout) != want {
		t.Errorf("status %d, stdout %q (want %s), stderr %q", status, stdout, want, stderr)
	}
}

// TestGenerate_NaNWeightsWarn (issue 17): generate with a model whose
// weights are all NaN warns at load, naming the problem.
func TestGenerate_NaNWeightsWarn(t *testing.T) {
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Params() {
		for i := range p.Tensor.Data {
			p.Tensor.Data[i] = float32(math.NaN())
		}
	}
	dir := filepath.Join(t.TempDir(), "nan")
	if err := load.Save(dir, l.Module(), l.Config, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.bin"), assets.Tok512(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, stderr := gorlhfProcess(t, "generate", "--model", dir, "--prompt", "Once", "--max-new-tokens", "2", "--threads", "1")
	if !strings.Contains(stderr, "every weight") || !strings.Contains(stderr, "NaN or infinite") {
		t.Errorf("no warning on stderr:\n%s", stderr)
	}
}
