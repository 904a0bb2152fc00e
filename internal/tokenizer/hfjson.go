package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
)

// jsonTokenizer is the top level of tokenizer.json. Polymorphic parts stay
// raw so that each is parsed with a precise field name in errors.
type jsonTokenizer struct {
	AddedTokens   []jsonAddedToken `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
	Model         *jsonModel       `json:"model"`
}

type jsonAddedToken struct {
	ID         *int    `json:"id"`
	Content    *string `json:"content"`
	SingleWord bool    `json:"single_word"`
	LStrip     bool    `json:"lstrip"`
	RStrip     bool    `json:"rstrip"`
	Normalized bool    `json:"normalized"`
	Special    bool    `json:"special"`
}

type jsonModel struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

// ParseHF builds a tokenizer from the bytes of a tokenizer.json. Errors name
// the offending field (for example "model.merges[7]").
func ParseHF(data []byte) (*HF, error) {
	var j jsonTokenizer
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", jsonErr(err))
	}
	if j.Model == nil {
		return nil, errors.New("model: missing")
	}
	t := &HF{special: map[int]bool{}, specials: noSpecials()}
	var err error
	if t.model, err = parseModel(j.Model); err != nil {
		return nil, err
	}
	if t.norm, err = parseNormalizer(j.Normalizer, "normalizer"); err != nil {
		return nil, err
	}
	if t.pre, err = parsePreTokenizer(j.PreTokenizer, "pre_tokenizer"); err != nil {
		return nil, err
	}
	if t.dec, err = parseDecoder(j.Decoder, "decoder"); err != nil {
		return nil, err
	}
	added, err := parseAddedTokens(j.AddedTokens)
	if err != nil {
		return nil, err
	}
	if err := checkIDRange(t.model.vocab, added); err != nil {
		return nil, err
	}
	t.buildVocab(added)
	t.splitAdded(added)
	t.guessSpecials(added, j.PostProcessor)
	return t, nil
}

// jsonErr adds the field path encoding/json knows to a type error.
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("field %s: want %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	return err
}

func parseModel(m *jsonModel) (*bpe, error) {
	if m.Type != "" && m.Type != "BPE" {
		return nil, fmt.Errorf("model.type: unsupported model %q (only BPE)", m.Type)
	}
	switch {
	case m.Dropout != nil && *m.Dropout != 0:
		return nil, fmt.Errorf("model.dropout: %v is not supported (tokenization must be deterministic)", *m.Dropout)
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "":
		return nil, fmt.Errorf("model.continuing_subword_prefix: %q is not supported", *m.ContinuingSubwordPrefix)
	case m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, fmt.Errorf("model.end_of_word_suffix: %q is not supported", *m.EndOfWordSuffix)
	}
	vocab, err := parseVocab(m.Vocab)
	if err != nil {
		return nil, err
	}
	merges, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}
	b, err := newBPE(vocab, merges, "model.merges")
	if err != nil {
		return nil, err
	}
	b.fuseUnk, b.byteFallback, b.ignoreMerges = m.FuseUnk, m.ByteFallback, m.IgnoreMerges
	if m.UnkToken != nil {
		id, ok := vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("model.unk_token: %q not in model.vocab", *m.UnkToken)
		}
		b.unkID = id
	}
	return b, nil
}

func parseVocab(raw json.RawMessage) (map[string]int, error) {
	if isNull(raw) {
		return nil, errors.New("model.vocab: missing")
	}
	return scanVocab(raw)
}

// parseMerges accepts both spellings: "a b" strings and ["a", "b"] pairs.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil // a vocabulary without merges is valid (characters only)
	}
	return scanMerges(raw)
}

func parseAddedTokens(js []jsonAddedToken) ([]addedToken, error) {
	out := make([]addedToken, 0, len(js))
	for i, a := range js {
		switch {
		case a.ID == nil:
			return nil, fmt.Errorf("added_tokens[%d].id: missing", i)
		case *a.ID < 0:
			return nil, fmt.Errorf("added_tokens[%d].id: negative id %d", i, *a.ID)
		case a.Content == nil || *a.Content == "":
			return nil, fmt.Errorf("added_tokens[%d].content: missing or empty", i)
		}
		out = append(out, addedToken{
			id: *a.ID, content: *a.Content, singleWord: a.SingleWord, lstrip: a.LStrip,
			rstrip: a.RStrip, normalized: a.Normalized, special: a.Special,
		})
	}
	return out, nil
}

// idSlack bounds how sparse ids may be: the id table is a slice, so an id
// of 10^12 in a hostile file must be an error, not an allocation.
const idSlack = 1 << 16

func checkIDRange(vocab map[string]int, added []addedToken) error {
	limit := len(vocab) + len(added) + idSlack
	for tok, id := range vocab {
		if id >= limit {
			return fmt.Errorf("model.vocab[%q]: id %d is far beyond the %d tokens", tok, id, len(vocab))
		}
	}
	for i, a := range added {
		if a.id >= limit {
			return fmt.Errorf("added_tokens[%d].id: id %d is far beyond the %d tokens", i, a.id, len(vocab)+len(added))
		}
	}
	return nil
}

// buildVocab makes the id -> token table from the model vocabulary and the
// added tokens (which win when both name an id).
func (t *HF) buildVocab(added []addedToken) {
	size := 0
	for _, id := range t.model.vocab {
		size = max(size, id+1)
	}
	for _, a := range added {
		size = max(size, a.id+1)
	}
	t.idToTok = make([]string, size)
	t.present = make([]bool, size)
	for tok, id := range t.model.vocab {
		t.idToTok[id], t.present[id] = tok, true
	}
	t.addedIDs = make(map[string]int, len(added))
	for _, a := range added {
		t.idToTok[a.id], t.present[a.id] = a.content, true
		t.addedIDs[a.content] = a.id
		if a.special {
			t.special[a.id] = true
		}
	}
}

// splitAdded builds the two matchers: tokens with normalized=false match the
// raw text, the others match normalized text in their normalized form.
func (t *HF) splitAdded(added []addedToken) {
	var raw, normed []addedToken
	for _, a := range added {
		if !a.normalized {
			raw = append(raw, a)
			continue
		}
		if t.norm != nil {
			a.content = t.norm.normalize(a.content)
		}
		normed = append(normed, a)
	}
	t.raw, t.normed = newAddedMatcher(raw), newAddedMatcher(normed)
}

// guessSpecials fills Specials from what tokenizer.json alone says: the
// model's unk token, the BOS/EOS a TemplateProcessing post-processor adds,
// and otherwise the conventional names of special tokens. A sibling
// tokenizer_config.json (see ApplyConfig) is more reliable and overrides.
func (t *HF) guessSpecials(added []addedToken, post json.RawMessage) {
	if t.model.unkID >= 0 {
		t.specials.UNK = t.model.unkID
	}
	t.specials.BOS, t.specials.EOS = templateSpecials(post, t.TokenID)
	t.postBOS = t.specials.BOS >= 0
	byName := func(names ...string) int {
		for _, n := range names {
			for _, a := range added {
				if a.special && a.content == n {
					return a.id
				}
			}
		}
		return -1
	}
	if t.specials.BOS < 0 {
		t.specials.BOS = byName("<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>")
	}
	if t.specials.EOS < 0 {
		t.specials.EOS = byName("</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>")
	}
	if t.specials.PAD < 0 {
		t.specials.PAD = byName("<pad>", "<|pad|>", "[PAD]")
	}
}

// jsonPost is the part of a post_processor that names BOS/EOS.
type jsonPost struct {
	Type       string            `json:"type"`
	Processors []json.RawMessage `json:"processors"`
	Single     []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
}

// templateSpecials returns the special tokens a TemplateProcessing puts
// before and after "$A" in its single-sequence template, or -1.
func templateSpecials(raw json.RawMessage, tokenID func(string) (int, bool)) (bos, eos int) {
	bos, eos = -1, -1
	if isNull(raw) {
		return
	}
	var p jsonPost
	if json.Unmarshal(raw, &p) != nil {
		return // post-processors do not affect Encode; ignore what we cannot read
	}
	if p.Type == "Sequence" {
		for _, sub := range p.Processors {
			if b, e := templateSpecials(sub, tokenID); b >= 0 || e >= 0 {
				return b, e
			}
		}
		return
	}
	if p.Type != "TemplateProcessing" {
		return
	}
	seenA := false
	for _, piece := range p.Single {
		switch {
		case piece.Sequence != nil:
			seenA = true
		case piece.SpecialToken != nil:
			id, ok := tokenID(piece.SpecialToken.ID)
			if !ok {
				continue
			}
			if !seenA && bos < 0 {
				bos = id
			} else if seenA && eos < 0 {
				eos = id
			}
		}
	}
	return
}
