package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// hfTokenizerFiles are the tokenizer files copied from an HF model folder.
var hfTokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
	"generation_config.json", "chat_template.jinja"}

// runConvert writes a model as a Hugging Face folder: config.json,
// model.safetensors (F32 or BF16) and, when one is known, the tokenizer.
// It turns llama2.c checkpoints (such as the embedded stories260K) into
// folders transformers and vLLM load, and changes the stored dtype.
func runConvert(ctx context.Context, args []string) error {
	flags := newFlagSet("convert", "convert --model M --out DIR [--dtype f32|bf16] [--tokenizer PATH]")
	ref := flags.String("model", load.DefaultModel, "model: HF folder, llama2.c file, Hub id in the local HF cache, or "+load.DefaultModel+" (embedded)")
	out := flags.String("out", "", "output folder; must not exist or be empty (required)")
	dtypeName := flags.String("dtype", "f32", "weight type to write: f32 or bf16")
	tokPath := flags.String("tokenizer", "", "tokenizer to write with the model: tokenizer.json, a folder holding one, or a llama2.c .bin "+
		"(default: the model folder's own files, or the embedded tok512 for a llama2.c model with 512 tokens)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	switch {
	case flags.NArg() > 0:
		return fmt.Errorf("convert: unexpected arguments %q", flags.Args())
	case *out == "":
		return errors.New("convert: --out is required")
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
	l, err := load.Load(*ref, load.Options{Hub: hub.OptionsFromEnv(), Logger: logger})
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	fmt.Fprintln(os.Stderr, l.Summary)
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
	vocab := modelVocab(l)
	switch {
	case path != "":
		files, err := tokenizerFromPath(path, vocab, l)
		return files, "", err
	case l.Location.Kind == hub.HFFolder:
		files := map[string][]byte{}
		for _, n := range hfTokenizerFiles {
			data, err := os.ReadFile(filepath.Join(l.Path, n))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, "", err
			}
			files[n] = data
		}
		if len(files) == 0 {
			return nil, "no tokenizer files in " + l.Path + "; none written (pass --tokenizer)", nil
		}
		return files, "", nil
	case vocab == 512:
		tok, err := tokenizer.ParseLlama2C(assets.Tok512())
		if err != nil {
			return nil, "", err
		}
		files, err := llama2cTokenizerFiles(tok, l)
		return files, "no --tokenizer given: writing the embedded tok512 tokenizer (the model has 512 tokens)", err
	}
	return nil, "no tokenizer written (pass --tokenizer)", nil
}

// tokenizerFromPath reads the tokenizer at path: a llama2.c .bin is
// exported as tokenizer.json; a tokenizer.json (or .gz, or a folder) is
// copied with the tokenizer_config.json next to it.
func tokenizerFromPath(path string, vocab int, l *load.Loaded) (map[string][]byte, error) {
	tok, err := tokenizer.Load(path)
	if err != nil {
		return nil, err
	}
	if n := tok.VocabSize(); vocab > 0 && n > vocab {
		return nil, fmt.Errorf("tokenizer %s has %d tokens but the model's vocabulary is %d", path, n, vocab)
	}
	if lt, ok := tok.(*tokenizer.Llama2C); ok {
		return llama2cTokenizerFiles(lt, l)
	}
	file := path
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		file = filepath.Join(path, "tokenizer.json")
		if _, err := os.Stat(file); err != nil {
			file += ".gz"
		}
	}
	data, err := readMaybeGzip(file)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"tokenizer.json": data}
	for _, n := range hfTokenizerFiles[1:] {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(file), n)); err == nil {
			files[n] = b
		}
	}
	return files, nil
}

// llama2cTokenizerFiles exports a llama2.c vocabulary as tokenizer.json
// plus a tokenizer_config.json naming BOS/EOS/UNK.
func llama2cTokenizerFiles(tok *tokenizer.Llama2C, l *load.Loaded) (map[string][]byte, error) {
	j, err := tok.HFJSON()
	if err != nil {
		return nil, err
	}
	sp := tok.Specials()
	name := func(id int) any {
		if id < 0 {
			return nil
		}
		return tok.Token(id)
	}
	cfg := map[string]any{
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"bos_token":                    name(sp.BOS),
		"eos_token":                    name(sp.EOS),
		"unk_token":                    name(sp.UNK),
		"pad_token":                    nil,
		"add_bos_token":                true,
		"add_eos_token":                false,
		"clean_up_tokenization_spaces": false,
	}
	if n := maxPositions(l); n > 0 {
		cfg["model_max_length"] = n
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	return map[string][]byte{"tokenizer.json": j, "tokenizer_config.json": b.Bytes()}, nil
}

func modelVocab(l *load.Loaded) int { return l.Model.Dims().Vocab }

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

func readMaybeGzip(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gunzip %s: %w", path, err)
	}
	defer zr.Close()
	return io.ReadAll(zr)
}
