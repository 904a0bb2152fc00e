package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestHFFiles_Llama2C exports tok512 and loads the folder back: the same
// ids, BOS added by the post-processor and by add_bos_token, and
// model_max_length written.
func TestHFFiles_Llama2C(t *testing.T) {
	tok := mustLoad(t, tok512Path)
	files, err := HFFiles(tok, tok512Path, 256)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files["tokenizer.json"] == nil {
		t.Fatalf("files %d", len(files))
	}
	var cfg struct {
		AddBOS bool `json:"add_bos_token"`
		MaxLen int  `json:"model_max_length"`
	}
	if err := json.Unmarshal(files["tokenizer_config.json"], &cfg); err != nil || !cfg.AddBOS || cfg.MaxLen != 256 {
		t.Fatalf("tokenizer_config.json %s: %v", files["tokenizer_config.json"], err)
	}
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	back := mustLoad(t, dir)
	hf, ok := back.(*HF)
	if !ok || !hf.PostProcessorBOS() {
		t.Fatalf("exported tokenizer %T does not add BOS in its post-processor", back)
	}
	const text = "Once upon a time, Lily saw a big cat."
	if a, b := tok.Encode(text), back.Encode(text); !slices.Equal(a, b) || back.Specials() != tok.Specials() {
		t.Errorf("ids %v, exported %v; specials %+v, %+v", a, b, tok.Specials(), back.Specials())
	}
}

// TestHFFiles_JSON copies a gzipped tokenizer.json as plain JSON with the
// config files next to it; GPT-2's post-processor adds no BOS.
func TestHFFiles_JSON(t *testing.T) {
	tok := mustLoad(t, gpt2Path)
	if tok.(*HF).PostProcessorBOS() {
		t.Error("GPT-2's byte-level post-processor reported as adding BOS")
	}
	dir := t.TempDir()
	gz, err := os.ReadFile(gpt2Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json.gz"), gz, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id": 50256}`), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := HFFiles(tok, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["tokenizer.json"], plain) || files["generation_config.json"] == nil || len(files) != 2 {
		t.Errorf("files %d, tokenizer.json %d bytes (want %d)", len(files), len(files["tokenizer.json"]), len(plain))
	}
	got, err := ReadFiles(dir, FolderFiles)
	if err != nil || len(got) != 2 || got["tokenizer.json.gz"] == nil {
		t.Errorf("ReadFiles: %d files, %v", len(got), err)
	}
}
