package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// HF is a tokenizer read from a Hugging Face tokenizer.json with a BPE
// model. The pipeline follows HF tokenizers: added tokens are cut out of the
// raw text, each remaining piece is normalized, pre-tokenized and run
// through BPE; ids are decoded by the file's decoder.
type HF struct {
	norm     normalizer   // nil: none
	pre      preTokenizer // nil: the whole piece is one word
	model    *bpe
	dec      decoder // nil: tokens joined by spaces, as HF does
	raw      *addedMatcher
	normed   *addedMatcher
	special  map[int]bool // ids of added tokens marked special
	idToTok  []string
	present  []bool         // present[id]: id names a token (ids may have holes)
	addedIDs map[string]int // added token content -> id; the rest is in model.vocab
	specials Specials
	postBOS  bool // the post-processor puts a special token before the text
}

var _ Tokenizer = (*HF)(nil)

// PostProcessorBOS reports whether tokenizer.json's post-processor puts a
// special token (BOS) before the text, which is what Hugging Face's
// add_special_tokens=True adds (Llama 2, Llama 3) when
// tokenizer_config.json does not say otherwise. Encode never adds it.
func (t *HF) PostProcessorBOS() bool { return t.postBOS }

// Encode returns the ids of text with special tokens taken as plain text.
func (t *HF) Encode(text string) []int { return t.EncodeWith(text, EncodeOptions{}) }

// EncodeWith returns the ids of text.
func (t *HF) EncodeWith(text string, o EncodeOptions) []int {
	out := &modelSink{m: t.model, ids: make([]int, 0, len(text)/3+1)}
	for _, seg := range t.raw.split(nil, text, o.ParseSpecial) {
		if seg.id >= 0 {
			out.ids = append(out.ids, seg.id)
			continue
		}
		s := seg.text
		if t.norm != nil {
			s = t.norm.normalize(s)
		}
		for _, sub := range t.normed.split(nil, s, o.ParseSpecial) {
			if sub.id >= 0 {
				out.ids = append(out.ids, sub.id)
				continue
			}
			p := piece{text: sub.text, atStart: seg.start == 0 && sub.start == 0}
			if t.pre != nil {
				t.pre.preTokenize(p, out)
			} else {
				out.add(p)
			}
		}
	}
	return out.ids
}

// modelSink runs each pre-token through BPE as it arrives.
type modelSink struct {
	m   *bpe
	ids []int
}

func (s *modelSink) add(p piece) { s.ids = s.m.tokenize(s.ids, p) }

// Decode returns the text of ids, special tokens included; ids outside the
// vocabulary are skipped.
func (t *HF) Decode(ids []int) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && id < len(t.idToTok) && t.present[id] {
			toks = append(toks, t.idToTok[id])
		}
	}
	if t.dec == nil {
		return strings.Join(toks, " ")
	}
	return strings.Join(t.dec.decodeChain(toks), "")
}

// VocabSize is one more than the largest id (vocabulary or added token).
func (t *HF) VocabSize() int { return len(t.idToTok) }

// TokenID returns the id of an added token or vocabulary entry.
func (t *HF) TokenID(tok string) (int, bool) {
	if id, ok := t.addedIDs[tok]; ok {
		return id, true
	}
	id, ok := t.model.vocab[tok]
	return id, ok
}

// Token returns the token string of id ("" when unknown).
func (t *HF) Token(id int) string {
	if id < 0 || id >= len(t.idToTok) {
		return ""
	}
	return t.idToTok[id]
}

// Specials returns the BOS/EOS/PAD/UNK ids (-1 when undefined).
func (t *HF) Specials() Specials { return t.specials }

// IsSpecial reports whether id is an added token marked special.
func (t *HF) IsSpecial(id int) bool { return t.special[id] }

// ApplyConfig reads bos_token, eos_token, pad_token and unk_token from a
// tokenizer_config.json, which is where HF keeps them. A key set to null
// clears that special; a missing key keeps the current value.
func (t *HF) ApplyConfig(cfg []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &raw); err != nil {
		return fmt.Errorf("parse tokenizer_config.json: %w", err)
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{"bos_token", &t.specials.BOS}, {"eos_token", &t.specials.EOS}, {"pad_token", &t.specials.PAD}, {"unk_token", &t.specials.UNK}} {
		v, ok := raw[f.key]
		if !ok {
			continue
		}
		name, err := configTokenName(v)
		if err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
		if name == "" {
			*f.dst = -1
			continue
		}
		id, ok := t.TokenID(name)
		if !ok {
			return fmt.Errorf("%s: token %q is not in the vocabulary", f.key, name)
		}
		*f.dst = id
	}
	return nil
}

// configTokenName reads a token given as null, "text" or {"content": "text"}.
func configTokenName(v json.RawMessage) (string, error) {
	if isNull(v) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(v, &obj); err != nil {
		return "", fmt.Errorf("want a string or {\"content\": ...}: %w", err)
	}
	return obj.Content, nil
}
