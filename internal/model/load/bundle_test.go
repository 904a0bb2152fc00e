package load

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// TestOpen_Embedded checks the bundle of the default model: tok512, its
// file to save, EOS as the stop id, BOS first, and run.c's stop at BOS
// for generation only.
func TestOpen_Embedded(t *testing.T) {
	b, err := Open(DefaultModel, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sp := b.Tok.Specials()
	if b.Name != DefaultModel || b.TokenizerDir != "" || len(b.TokenizerFiles) != 1 || b.TokenizerFiles["tokenizer.bin"] == nil {
		t.Errorf("name %q dir %q files %d", b.Name, b.TokenizerDir, len(b.TokenizerFiles))
	}
	if !slices.Equal(b.StopIDs, []int32{int32(sp.EOS)}) || !b.StopAtBOS || !b.AddBOS || b.BOS() != int32(sp.BOS) {
		t.Errorf("stops %v at BOS %v, add BOS %v", b.StopIDs, b.StopAtBOS, b.AddBOS)
	}
	if got := b.GenerationStops(); !slices.Equal(got, []int32{int32(sp.EOS), int32(sp.BOS)}) {
		t.Errorf("generation stops %v", got)
	}
	if _, err := b.NeedTemplate(); err == nil || b.Template != nil {
		t.Error("the embedded model has a chat template")
	}
}

// writeStoriesFolder saves stories260K as an HF folder with an exported
// tok512 (tokenizer.json, tokenizer_config.json with add_bos_token) and
// extra files.
func writeStoriesFolder(t *testing.T, extra map[string]string) string {
	t.Helper()
	l, err := Load(DefaultModel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "stories")
	if err := Save(dir, l.Module(), l.Config, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		t.Fatal(err)
	}
	files, err := tok.HFFiles(256)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range extra {
		files[name] = []byte(s)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestOpen_Folder checks an HF folder: generation_config.json's eos ids
// join the tokenizer's EOS, no BOS stop, the tokenizer files to save, and
// the BOS rule (add_bos_token, else the post-processor, or the mode).
func TestOpen_Folder(t *testing.T) {
	t.Run("generation config", func(t *testing.T) {
		dir := writeStoriesFolder(t, map[string]string{"generation_config.json": `{"eos_token_id": [5, 2, 7]}`})
		b, err := Open(dir, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b.StopIDs, []int32{2, 5, 7}) || b.StopAtBOS || !slices.Equal(b.GenerationStops(), b.StopIDs) {
			t.Errorf("stops %v, at BOS %v", b.StopIDs, b.StopAtBOS)
		}
		if !b.AddBOS || b.Name != "stories" || b.TokenizerDir != dir {
			t.Errorf("add BOS %v, name %q, dir %q", b.AddBOS, b.Name, b.TokenizerDir)
		}
		for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
			if b.TokenizerFiles[f] == nil {
				t.Errorf("no %s among the files to save (%d)", f, len(b.TokenizerFiles))
			}
		}
	})
	t.Run("one eos id", func(t *testing.T) {
		b, err := Open(writeStoriesFolder(t, map[string]string{"generation_config.json": `{"eos_token_id": 9}`}), OpenOptions{})
		if err != nil || !slices.Equal(b.StopIDs, []int32{2, 9}) {
			t.Fatalf("stops %v, %v", b.StopIDs, err)
		}
	})
	t.Run("bad generation config", func(t *testing.T) {
		_, err := Open(writeStoriesFolder(t, map[string]string{"generation_config.json": `{"eos_token_id": "x"}`}), OpenOptions{})
		if err == nil || !strings.Contains(err.Error(), "eos_token_id") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("BOS rule", func(t *testing.T) {
		noKey := `{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}`
		for _, c := range []struct {
			name, cfg string
			mode      BOSMode
			want      bool
		}{
			{"add_bos_token false", `{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false}`, BOSAuto, false},
			{"post-processor adds BOS", noKey, BOSAuto, true},
			{"off", noKey, BOSOff, false},
			{"on", `{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false}`, BOSOn, true},
		} {
			b, err := Open(writeStoriesFolder(t, map[string]string{"tokenizer_config.json": c.cfg}), OpenOptions{BOS: c.mode})
			if err != nil {
				t.Fatal(err)
			}
			if b.AddBOS != c.want || (b.BOS() >= 0) != c.want {
				t.Errorf("%s: add BOS %v, want %v", c.name, b.AddBOS, c.want)
			}
		}
		_, err := Open(writeStoriesFolder(t, nil), OpenOptions{BOS: "sometimes"})
		if err == nil || !strings.Contains(err.Error(), "auto, on or off") {
			t.Errorf("bad mode: %v", err)
		}
	})
	t.Run("chat template", func(t *testing.T) {
		dir := writeStoriesFolder(t, nil)
		b, err := Open(dir, OpenOptions{ChatTemplate: "{% for m in messages %}{{ m.content }}{% endfor %}"})
		if err != nil || b.Template == nil {
			t.Fatalf("template override: %v", err)
		}
		if _, err := Open(dir, OpenOptions{ChatTemplate: "{% for"}); err == nil {
			t.Error("a broken template override was accepted")
		}
	})
}

// TestOpen_Llama2CFile checks a llama2.c checkpoint: tokenizer.bin next to
// it is the tokenizer (and the file to save); without it Open says so.
func TestOpen_Llama2CFile(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "stories260K.bin")
	if err := os.WriteFile(model, assets.Stories260K(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(model, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "needs its tokenizer") {
		t.Fatalf("no tokenizer.bin: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.bin"), assets.Tok512(), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Open(model, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "stories260K.bin" || !b.StopAtBOS || !b.AddBOS || len(b.TokenizerFiles) != 1 || b.TokenizerDir != dir {
		t.Errorf("name %q at BOS %v add BOS %v files %d dir %q", b.Name, b.StopAtBOS, b.AddBOS, len(b.TokenizerFiles), b.TokenizerDir)
	}
}
