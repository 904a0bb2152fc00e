package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/hub"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// runConvert writes a model as a Hugging Face folder: config.json,
// model.safetensors (F32 or BF16) and, when one is known, the tokenizer.
// It turns llama2.c checkpoints (such as the embedded stories260K) into
// folders transformers and vLLM load, and changes the stored dtype. With
// --to gguf it writes one GGUF file for llama.cpp and ollama instead
// (runConvertGGUF).
func runConvert(ctx context.Context, args []string) error {
	flags := newFlagSet("convert", "convert --model M --out DIR [--dtype f32|bf16] [--tokenizer PATH]\n"+
		"       convert --model M --to gguf --out FILE.gguf [--dtype f32|f16] [--tokenizer PATH]\n"+
		"       convert --model BASE --merge-lora ADAPTER --out DIR   (a PEFT LoRA adapter merged into its base)")
	ref := flags.String("model", load.DefaultModel, "model: HF folder, llama2.c file, Hub id in the local HF cache, or "+load.DefaultModel+" (embedded)")
	out := flags.String("out", "", "output folder; must not exist or be empty (required)")
	dtypeName := flags.String("dtype", "f32", "weight type to write: f32 or bf16 (hf), f32 or f16 (gguf)")
	to := flags.String("to", "hf", "output format: hf (a Hugging Face folder) or gguf (one llama.cpp/ollama file; Llama family)")
	tokPath := flags.String("tokenizer", "", "tokenizer to write with the model: tokenizer.json, a folder holding one, or a llama2.c .bin "+
		"(default: the model folder's own files, or the embedded tok512 for a llama2.c model with 512 tokens)")
	mergeDir := flags.String("merge-lora", "", "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) to merge into --model before writing (hf only)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	switch {
	case *mergeDir != "" && *to != "hf":
		return fmt.Errorf("convert: --merge-lora writes an HF folder (--to hf); convert the merged folder to %s after", *to)
	case flags.NArg() > 0:
		return fmt.Errorf("convert: unexpected arguments %q", flags.Args())
	case *out == "":
		return errors.New("convert: --out is required")
	}
	switch *to {
	case "gguf":
		return runConvertGGUF(ctx, *ref, *out, *dtypeName, *tokPath)
	case "hf":
	default:
		return fmt.Errorf("convert: --to %q: want hf or gguf", *to)
	}
	dtype, err := parseDType(*dtypeName)
	if err != nil {
		return err
	}
	if err := checkOutFolder(*out); err != nil {
		return err
	}
	start := time.Now()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	l, err := load.Load(*ref, load.Options{Hub: hubOptions(), Logger: logger})
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	fmt.Fprintln(os.Stderr, l.Summary)
	if *mergeDir != "" {
		if err := mergeLoRA(l, *mergeDir); err != nil {
			return fmt.Errorf("convert: --merge-lora: %w", err)
		}
	}
	toks, note, err := tokenizerFiles(*tokPath, l)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if note != "" {
		fmt.Fprintln(os.Stderr, "convert:", note)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := writeFolder(*out, l, dtype, toks); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	names := append([]string{"config.json", "model.safetensors (" + string(dtype) + ")"}, slices.Sorted(maps.Keys(toks))...)
	fmt.Printf("wrote %s: %s in %v\n", *out, strings.Join(names, ", "), time.Since(start).Round(time.Millisecond))
	return nil
}

func parseDType(s string) (safetensors.DType, error) {
	switch strings.ToLower(s) {
	case "f32", "float32", "fp32":
		return safetensors.F32, nil
	case "bf16", "bfloat16":
		return safetensors.BF16, nil
	}
	return "", fmt.Errorf("convert: --dtype %q: want f32 or bf16", s)
}

// checkOutFolder refuses to overwrite: the output must be new or empty.
func checkOutFolder(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("convert: --out %s: %w", dir, err)
	case len(ents) > 0:
		return fmt.Errorf("convert: --out %s exists and is not empty", dir)
	}
	return nil
}

// writeFolder fills a temporary sibling of dir and renames it into place,
// so dir never holds a partial conversion.
func writeFolder(dir string, l *load.Loaded, dtype safetensors.DType, toks map[string][]byte) (err error) {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err = os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err = load.Save(tmp, l.Module(), l.Config, dtype); err != nil {
		return err
	}
	for name, data := range toks {
		if err = os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return err
		}
	}
	if err = checkOutFolder(dir); err != nil { // still new or empty?
		return err
	}
	if err = os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, dir)
}

// tokenizerFiles returns the tokenizer files to write and a note for the
// user: from --tokenizer when given; else the model folder's own files; else,
// for a llama2.c model with a 512-token vocabulary, the embedded tok512.
func tokenizerFiles(path string, l *load.Loaded) (map[string][]byte, string, error) {
	vocab := l.Model.Dims().Vocab
	switch {
	case path != "":
		tok, err := tokenizer.Load(path)
		if err != nil {
			return nil, "", err
		}
		if n := tok.VocabSize(); n > vocab {
			return nil, "", fmt.Errorf("tokenizer %s has %d tokens but the model's vocabulary is %d", path, n, vocab)
		}
		files, err := tokenizer.HFFiles(tok, path, maxPositions(l))
		return files, "", err
	case l.Location.Kind == hub.HFFolder:
		files, err := tokenizer.ReadFiles(l.Path, append([]string{"tokenizer.json"}, tokenizer.HFFileNames...))
		if err != nil || files["tokenizer.json"] != nil {
			return files, "", err
		}
		return folderTokenizer(l, files)
	case vocab == 512:
		tok, err := tokenizer.ParseLlama2C(assets.Tok512())
		if err != nil {
			return nil, "", err
		}
		files, err := tok.HFFiles(maxPositions(l))
		return files, "no --tokenizer given: writing the embedded tok512 tokenizer (the model has 512 tokens)", err
	}
	return nil, "no tokenizer written (pass --tokenizer)", nil
}

// folderTokenizer exports the tokenizer of a model folder that has no
// tokenizer.json (a run folder of a llama2.c model keeps tokenizer.bin;
// a folder may hold tokenizer.json.gz) as HF files, with the folder's
// other tokenizer files (found) where the export has none.
func folderTokenizer(l *load.Loaded, found map[string][]byte) (map[string][]byte, string, error) {
	tok, err := tokenizer.Load(l.Path)
	if err != nil {
		if len(found) > 0 {
			return found, "", nil
		}
		return nil, "no tokenizer files in " + l.Path + "; none written (pass --tokenizer)", nil
	}
	if n, vocab := tok.VocabSize(), l.Model.Dims().Vocab; n > vocab {
		return nil, "", fmt.Errorf("the tokenizer in %s has %d tokens but the model's vocabulary is %d", l.Path, n, vocab)
	}
	files, err := tokenizer.HFFiles(tok, l.Path, maxPositions(l))
	if err != nil {
		return nil, "", err
	}
	for name, b := range found {
		if _, ok := files[name]; !ok {
			files[name] = b
		}
	}
	return files, "", nil
}

// maxPositions reads max_position_embeddings (or GPT-2's n_positions).
func maxPositions(l *load.Loaded) int {
	var c struct {
		Max int `json:"max_position_embeddings"`
		N   int `json:"n_positions"`
	}
	if json.Unmarshal(l.Config, &c) != nil {
		return 0
	}
	return max(c.Max, c.N)
}
