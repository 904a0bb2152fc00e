package ggufexport

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gorlhf/gorlhf/internal/gguf"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Token types (tokenizer.ggml.token_type) as llama.cpp numbers them.
const (
	tokNormal  int32 = 1
	tokUnknown int32 = 2
	tokControl int32 = 3
	tokUser    int32 = 4
	tokByte    int32 = 6
)

// vocab is a tokenizer as GGUF describes it.
type vocab struct {
	model  string // "llama" (SentencePiece-style) or "gpt2" (byte-level BPE)
	tokens []string
	scores []float32
	types  []int32
	merges []string // gpt2 only
}

// vocabulary returns the tokenizer.ggml.* keys of src.
func vocabulary(src Source) ([]gguf.KV, error) {
	if src.Tok == nil {
		return nil, errors.New("ggufexport: the model has no tokenizer (llama.cpp needs one in the file)")
	}
	var v *vocab
	var err error
	switch t := src.Tok.(type) {
	case *tokenizer.Llama2C:
		v = llama2cVocab(t)
	default:
		if src.TokenizerJSON == nil {
			return nil, fmt.Errorf("ggufexport: tokenizer %T without a tokenizer.json to read its vocabulary from", src.Tok)
		}
		v, err = hfVocab(src.TokenizerJSON)
	}
	if err != nil {
		return nil, err
	}
	if n, want := len(v.tokens), src.Model.Dims().Vocab; n > want {
		return nil, fmt.Errorf("ggufexport: the tokenizer has %d tokens but the model's vocabulary is %d", n, want)
	}
	v.padTo(src.Model.Dims().Vocab)
	sp := src.Tok.Specials()
	eos := src.EOS
	if eos < 0 {
		eos = sp.EOS
	}
	kv := []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: v.model},
		{Key: "tokenizer.ggml.tokens", Value: v.tokens},
		{Key: "tokenizer.ggml.scores", Value: v.scores},
		{Key: "tokenizer.ggml.token_type", Value: v.types},
	}
	if v.model == "gpt2" {
		kv = append(kv, gguf.KV{Key: "tokenizer.ggml.merges", Value: v.merges})
	}
	for _, id := range []struct {
		key string
		id  int
	}{{"tokenizer.ggml.bos_token_id", sp.BOS}, {"tokenizer.ggml.eos_token_id", eos},
		{"tokenizer.ggml.unknown_token_id", sp.UNK}, {"tokenizer.ggml.padding_token_id", sp.PAD}} {
		if id.id >= 0 {
			kv = append(kv, gguf.KV{Key: id.key, Value: uint32(id.id)})
		}
	}
	kv = append(kv,
		gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: src.AddBOS},
		gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: false})
	return kv, nil
}

// padTo fills a vocabulary shorter than the model's embedding with unused
// placeholder tokens, as llama.cpp's converter does.
func (v *vocab) padTo(n int) {
	for i := len(v.tokens); i < n; i++ {
		v.tokens = append(v.tokens, fmt.Sprintf("[PAD%d]", i))
		v.scores = append(v.scores, 0)
		v.types = append(v.types, tokUser)
	}
}

// llama2cVocab spells a llama2.c vocabulary the SentencePiece way (spaces
// as "▁"), with its scores; byte tokens, UNK and BOS/EOS get their types.
func llama2cVocab(t *tokenizer.Llama2C) *vocab {
	n := t.VocabSize()
	v := &vocab{model: "llama", tokens: make([]string, n), scores: make([]float32, n), types: make([]int32, n)}
	sp := t.Specials()
	for id := range n {
		tok := t.Token(id)
		v.scores[id] = t.Score(id)
		switch {
		case id == sp.UNK:
			v.types[id] = tokUnknown
		case t.IsSpecial(id):
			v.types[id] = tokControl
		case isByteToken(tok):
			v.types[id] = tokByte
		default:
			v.types[id] = tokNormal
		}
		if v.types[id] == tokNormal {
			tok = strings.ReplaceAll(tok, " ", "\u2581")
		}
		v.tokens[id] = tok
	}
	return v
}

// isByteToken reports a byte-fallback token "<0xAB>".
func isByteToken(s string) bool {
	const hex = "0123456789ABCDEF"
	return len(s) == 6 && s[:3] == "<0x" && s[5] == '>' && strings.IndexByte(hex, s[3]) >= 0 && strings.IndexByte(hex, s[4]) >= 0
}

// hfJSON is the part of a tokenizer.json the export reads.
type hfJSON struct {
	Model struct {
		Type         string            `json:"type"`
		Vocab        map[string]int    `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
		ByteFallback bool              `json:"byte_fallback"`
	} `json:"model"`
	Added []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
}

// hfVocab reads a BPE tokenizer.json: byte-fallback (SentencePiece-style)
// vocabularies become "llama" with scores from the merge ranks (a token
// made by an earlier merge scores higher, so llama.cpp's highest-score
// merging follows the merge order), byte-level ones "gpt2" with merges.
func hfVocab(data []byte) (*vocab, error) {
	var h hfJSON
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("ggufexport: tokenizer.json: %w", err)
	}
	if h.Model.Type != "BPE" {
		return nil, fmt.Errorf("ggufexport: tokenizer.json model %q: only BPE vocabularies are exported", h.Model.Type)
	}
	n := 0
	for _, id := range h.Model.Vocab {
		n = max(n, id+1)
	}
	for _, a := range h.Added {
		n = max(n, a.ID+1)
	}
	v := &vocab{model: "gpt2", tokens: make([]string, n), scores: make([]float32, n), types: make([]int32, n)}
	if h.Model.ByteFallback {
		v.model = "llama"
	}
	for tok, id := range h.Model.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("ggufexport: tokenizer.json: token %q has id %d", tok, id)
		}
		v.tokens[id], v.types[id] = tok, tokNormal
		if v.model == "llama" && isByteToken(tok) {
			v.types[id] = tokByte
		}
	}
	for _, a := range h.Added {
		v.tokens[a.ID], v.types[a.ID] = a.Content, tokUser
		if a.Special {
			v.types[a.ID] = tokControl
		}
	}
	for id, tok := range v.tokens {
		if v.types[id] == 0 {
			v.tokens[id], v.types[id] = fmt.Sprintf("[PAD%d]", id), tokUser
		} else if tok == "<unk>" && v.types[id] == tokControl {
			v.types[id] = tokUnknown
		}
	}
	for rank, raw := range h.Model.Merges {
		a, b, err := mergePair(raw)
		if err != nil {
			return nil, fmt.Errorf("ggufexport: tokenizer.json merge %d: %w", rank, err)
		}
		v.merges = append(v.merges, a+" "+b)
		if id, ok := h.Model.Vocab[a+b]; ok && v.scores[id] == 0 {
			v.scores[id] = -float32(rank + 1)
		}
	}
	return v, nil
}

// mergePair reads a merge written as "a b" or ["a", "b"].
func mergePair(raw json.RawMessage) (string, string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		a, b, ok := strings.Cut(s, " ")
		if !ok {
			return "", "", fmt.Errorf("%q is not two tokens", s)
		}
		return a, b, nil
	}
	var pair []string
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return "", "", fmt.Errorf("%s is neither \"a b\" nor [a, b]", raw)
	}
	return pair[0], pair[1], nil
}
