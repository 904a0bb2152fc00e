package load

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/hub"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// TestLoad_Sources loads the same weights from the three kinds of
// reference: the embedded name, a llama2.c file on disk, and a Hub id in a
// (fake) local HF cache.
func TestLoad_Sources(t *testing.T) {
	emb, err := Load(DefaultModel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("llama2.c file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "stories260K.bin")
		if err := os.WriteFile(path, assets.Stories260K(), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Load(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Location.Kind != hub.Llama2CFile || l.Path != path {
			t.Errorf("location %+v", l.Location)
		}
		assertSameParams(t, emb, l)
	})
	t.Run("hub cache", func(t *testing.T) {
		cache := t.TempDir()
		commit := strings.Repeat("ab", 20)
		snap := filepath.Join(cache, "models--tiny-org--stories", "snapshots", commit)
		if err := Save(snap, emb.Module(), emb.Config, safetensors.F32); err != nil {
			t.Fatal(err)
		}
		refs := filepath.Join(cache, "models--tiny-org--stories", "refs")
		if err := os.MkdirAll(refs, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(refs, "main"), []byte(commit), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Load("tiny-org/stories", Options{Hub: hub.Options{HubCache: cache}})
		if err != nil {
			t.Fatal(err)
		}
		if l.Location.Repo != "tiny-org/stories" || l.Location.Commit != commit {
			t.Errorf("location %+v", l.Location)
		}
		assertSameParams(t, emb, l)
	})
}

// TestLoad_HeadPrefix loads a reward model whose head is stored under
// older OpenRLHF's "value_head" name, and saves it back as "score".
func TestLoad_HeadPrefix(t *testing.T) {
	src := filepath.Join("testdata", "tiny", "llama_seqcls")
	f, err := safetensors.OpenDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		data, shape, err := f.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		if n == "score.weight" {
			n = "value_head.weight"
		}
		ts = append(ts, safetensors.Tensor{Name: n, Shape: shape, Data: data})
	}
	f.Close()
	dir := t.TempDir()
	copyFile(t, filepath.Join(src, "config.json"), filepath.Join(dir, "config.json"))
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, Options{}); err == nil || !strings.Contains(err.Error(), "value_head.weight") {
		t.Errorf("without HeadPrefix: %v", err)
	}
	l, err := Load(dir, Options{HeadPrefix: "value_head"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Load(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	assertSameParams(t, want, l)
}

// TestLoad_Summary checks the one-line report and that warnings reach the
// logger.
func TestLoad_Summary(t *testing.T) {
	var logs bytes.Buffer
	l, err := Load(filepath.Join("testdata", "tiny", "mistral"), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.Summary, "mistral, 4.7K params, 18.8 KB f32") {
		t.Errorf("summary %q", l.Summary)
	}
	if !strings.Contains(logs.String(), "sliding_window = 4096") {
		t.Errorf("logged %q", logs.String())
	}
	bf, err := Load(filepath.Join("testdata", "tiny", "llama_bf16"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(bf.Summary, "(stored bf16)") {
		t.Errorf("summary %q", bf.Summary)
	}
}

func TestHumanCount(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{12, "12"}, {260_096, "260.1K"}, {494_032_768, "494.0M"}, {7_241_732_096, "7.24B"}} {
		if got := humanCount(c.n); got != c.want {
			t.Errorf("humanCount(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	for _, c := range []struct {
		n    int
		want string
	}{{28_160, "28.2 KB"}, {1_040_384, "1.0 MB"}, {1_976_131_072, "1.98 GB"}} {
		if got := humanBytes(c.n); got != c.want {
			t.Errorf("humanBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
