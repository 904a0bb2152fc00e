package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/gguf"
	"github.com/gorlhf/gorlhf/internal/ggufexport"
	"github.com/gorlhf/gorlhf/internal/model/load"
)

// runConvertGGUF writes the model ref names as one GGUF file at out, with
// its tokenizer and chat template, for llama.cpp and ollama. An existing
// file is never overwritten, and out appears only when whole.
func runConvertGGUF(ctx context.Context, ref, out, dtypeName, tokPath string) error {
	dtype, err := parseGGUFDType(dtypeName)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("convert: --out %s exists; not overwritten", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("convert: --out %s: %w", out, err)
	}
	if err := ggufArchitecture(ref); err != nil {
		return err
	}
	start := time.Now()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	b, err := load.Open(ref, load.OpenOptions{Load: load.Options{Hub: hubOptions(), Logger: logger}, Tokenizer: tokPath})
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	fmt.Fprintln(os.Stderr, b.Summary)
	src := ggufexport.Source{Name: b.Name, Model: b.Model, Tok: b.Tok, AddBOS: b.AddBOS, EOS: -1,
		TokenizerJSON: b.TokenizerFiles["tokenizer.json"]}
	if b.Template != nil {
		src.ChatTemplate = b.Template.Source()
	}
	if b.Score != nil {
		return errors.New("convert: --to gguf: a reward or value model (score head) has no GGUF form here; convert its causal LM")
	}
	meta, tensors, err := ggufexport.Llama(src, dtype)
	if err != nil {
		return fmt.Errorf("convert: --to gguf: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := writeGGUF(out, meta, tensors); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	info, err := os.Stat(out)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	fmt.Printf("wrote %s: GGUF v%d, llama, %d tensors (%s), %.1f MB in %v\n", out, gguf.Version, len(tensors),
		dtype, float64(info.Size())/1e6, time.Since(start).Round(time.Millisecond))
	return nil
}

// ggufArchitecture refuses, before anything is loaded, a model folder whose
// config.json names an architecture the GGUF export does not write (the
// export checks the loaded model again).
func ggufArchitecture(ref string) error {
	data, err := os.ReadFile(filepath.Join(ref, "config.json"))
	if err != nil {
		return nil // not a folder: a llama2.c file, a Hub id or stories260K
	}
	var c struct {
		ModelType string `json:"model_type"`
	}
	if json.Unmarshal(data, &c) != nil {
		return nil // the loader will say what is wrong
	}
	switch c.ModelType {
	case "llama", "mistral", "":
		return nil
	case "gpt2":
		return fmt.Errorf("convert: --to gguf: %s is a GPT-2 model; only the Llama family (llama, mistral) is exported to GGUF so far (GPT-2 may come later)", ref)
	}
	return fmt.Errorf("convert: --to gguf: %s is a %s model; only the Llama family (llama, mistral) is exported to GGUF so far", ref, c.ModelType)
}

func parseGGUFDType(s string) (gguf.TensorType, error) {
	switch strings.ToLower(s) {
	case "f32", "float32", "fp32":
		return gguf.F32, nil
	case "f16", "float16", "fp16":
		return gguf.F16, nil
	}
	return 0, fmt.Errorf("convert: --dtype %q: want f32 or f16 for --to gguf", s)
}

// writeGGUF writes a temporary sibling of path, syncs it and links it into
// place, failing if path appeared meanwhile.
func writeGGUF(path string, meta []gguf.KV, tensors []gguf.Tensor) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = gguf.Write(f, meta, tensors); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	// Link refuses an existing path, unlike Rename.
	if err = os.Link(tmp, path); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	return os.Remove(tmp)
}
