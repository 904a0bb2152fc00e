package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FolderFiles are the files of a model folder that make up its tokenizer
// (and its generation settings); trainers copy the ones present into
// every model they save, so that a checkpoint loads with its tokenizer.
var FolderFiles = []string{
	"tokenizer.json", "tokenizer.json.gz", "tokenizer_config.json", "special_tokens_map.json",
	"tokenizer.model", "chat_template.jinja", "tokenizer.bin", "generation_config.json",
}

// HFFileNames are the files a Hugging Face model folder keeps next to its
// tokenizer.json that transformers reads with it.
var HFFileNames = []string{"tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "chat_template.jinja"}

// ReadFiles reads the files of names present in dir (missing ones are
// skipped), keyed by name.
func ReadFiles(dir string, names []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		out[name] = b
	}
	return out, nil
}

// HFFiles returns the files that carry tok, loaded from path (see Load),
// into a Hugging Face model folder: a llama2.c vocabulary is exported
// (Llama2C.HFFiles); a tokenizer.json (gzipped or not, or a folder
// holding one) is written as a plain tokenizer.json with the HFFileNames
// found next to it. modelMaxLen > 0 becomes model_max_length in an
// exported tokenizer_config.json.
func HFFiles(tok Tokenizer, path string, modelMaxLen int) (map[string][]byte, error) {
	if lt, ok := tok.(*Llama2C); ok {
		return lt.HFFiles(modelMaxLen)
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
	files, err := ReadFiles(filepath.Dir(file), HFFileNames)
	if err != nil {
		return nil, err
	}
	files["tokenizer.json"] = data
	return files, nil
}

// HFFiles exports the vocabulary as a tokenizer.json (HFJSON) plus a
// tokenizer_config.json naming BOS/EOS/UNK, with add_bos_token set as
// run.c encodes prompts. modelMaxLen > 0 is written as model_max_length.
func (t *Llama2C) HFFiles(modelMaxLen int) (map[string][]byte, error) {
	j, err := t.HFJSON()
	if err != nil {
		return nil, err
	}
	name := func(id int) any {
		if id < 0 {
			return nil
		}
		return t.Token(id)
	}
	cfg := map[string]any{
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"bos_token":                    name(t.specials.BOS),
		"eos_token":                    name(t.specials.EOS),
		"unk_token":                    name(t.specials.UNK),
		"pad_token":                    nil,
		"add_bos_token":                true,
		"add_eos_token":                false,
		"clean_up_tokenization_spaces": false,
	}
	if modelMaxLen > 0 {
		cfg["model_max_length"] = modelMaxLen
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("tokenizer: export: %w", err)
	}
	return map[string][]byte{"tokenizer.json": j, "tokenizer_config.json": b.Bytes()}, nil
}
