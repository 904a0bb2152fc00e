// Package tokenizer turns text into token ids and back for the models gorlhf
// trains: Hugging Face tokenizer.json files (byte-level BPE as in GPT-2,
// Qwen2/Qwen3 and Llama 3; SentencePiece-style BPE with byte fallback as in
// Llama 2 and Mistral) and llama2.c tokenizer .bin files.
//
// The package exists so that one static binary can tokenize exactly like the
// Python stack it replaces: ids must equal those of HF tokenizers, or a
// reward model and a policy trained elsewhere would see different inputs.
// Go's regexp (RE2) cannot express the lookahead in the GPT-2 and Qwen
// pre-tokenizer patterns, so those known patterns are matched by hand-written
// scanners (pattern.go).
//
// Encode never adds BOS or EOS: templates and trainers decide where those go.
package tokenizer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Tokenizer encodes text to ids and decodes ids to text. Implementations are
// safe for concurrent use.
type Tokenizer interface {
	// Encode returns the ids of text, without BOS/EOS. Special tokens written
	// in text are encoded as plain text (see EncodeOptions).
	Encode(text string) []int
	// EncodeWith is Encode with options.
	EncodeWith(text string, o EncodeOptions) []int
	// Decode returns the text of ids; unknown ids are skipped.
	Decode(ids []int) string
	// VocabSize is one more than the largest id the tokenizer can produce.
	VocabSize() int
	// TokenID returns the id of a token string such as "<|im_end|>".
	TokenID(tok string) (int, bool)
	// Token returns the token string of id, or "" when id is unknown.
	Token(id int) string
	// Specials returns the BOS/EOS/PAD/UNK ids the files define.
	Specials() Specials
}

// EncodeOptions tune one Encode call. The zero value is what Encode uses.
type EncodeOptions struct {
	// ParseSpecial makes special tokens written in the text (for example
	// "<|im_start|>") encode as their single special id. When false they are
	// encoded as ordinary text, which is the safe choice for untrusted text;
	// chat templates set it. Added tokens that are not marked special (Qwen's
	// "<think>") are always matched, as Hugging Face tokenizers does.
	ParseSpecial bool
}

// Specials holds the ids of the special tokens a tokenizer defines; -1 marks
// one that is not defined.
type Specials struct {
	BOS int
	EOS int
	PAD int
	UNK int
}

// noSpecials is the starting point before files fill in what they define.
func noSpecials() Specials { return Specials{BOS: -1, EOS: -1, PAD: -1, UNK: -1} }

// Load reads a tokenizer from path: a tokenizer.json (optionally gzipped as
// tokenizer.json.gz), a folder holding one of those, or a llama2.c tokenizer
// .bin file. For a tokenizer.json, a tokenizer_config.json next to it (if
// present) supplies the BOS/EOS/PAD tokens.
func Load(path string) (Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if st.IsDir() {
		return loadDir(path)
	}
	data, err := readMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	if looksLikeJSON(data) {
		return loadHFData(path, data)
	}
	t, err := ParseLlama2C(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s is neither JSON nor a llama2.c tokenizer: %w", path, err)
	}
	return t, nil
}

// loadDir picks the tokenizer file inside a model folder.
func loadDir(dir string) (Tokenizer, error) {
	for _, name := range []string{"tokenizer.json", "tokenizer.json.gz", "tokenizer.bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return Load(p)
		}
	}
	return nil, fmt.Errorf("tokenizer: no tokenizer.json, tokenizer.json.gz or tokenizer.bin in %s", dir)
}

// loadHFData parses tokenizer.json bytes and applies a sibling
// tokenizer_config.json when one exists.
func loadHFData(path string, data []byte) (*HF, error) {
	t, err := ParseHF(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	cfg, err := os.ReadFile(cfgPath)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if err := t.ApplyConfig(cfg); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", cfgPath, err)
	}
	return t, nil
}

// readMaybeGzip reads a file and gunzips it when it starts with the gzip
// magic bytes, so "tokenizer.json.gz" needs no special naming.
func readMaybeGzip(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: gunzip %s: %w", path, err)
	}
	defer zr.Close()
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: gunzip %s: %w", path, err)
	}
	return out, nil
}

// looksLikeJSON reports whether data starts (after whitespace and an
// optional UTF-8 BOM) with '{' and then '"' or '}'. The second byte keeps a
// llama2.c file whose max_token_length happens to be 123 ('{') out.
func looksLikeJSON(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	rest := bytes.TrimLeft(data[1:], " \t\r\n")
	return len(rest) > 0 && (rest[0] == '"' || rest[0] == '}')
}
