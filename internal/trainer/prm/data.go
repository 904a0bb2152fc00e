package prm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/reward/prmodel"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Sample is one step-tagged input: its tokens, where its step tags are,
// and one label per tag. Exactly one of Hard and Soft is set.
type Sample struct {
	IDs  []int32
	Tags []int // token index of each step tag, ascending
	// Hard holds each tag's class: an index into the reward tokens, or a
	// token id when the classifier is the whole vocabulary.
	Hard []int32
	// Soft holds each tag's probability of the positive (first) reward
	// token.
	Soft []float32
	Pos  data.Position
}

// Tokens are the token ids a PRM reads and predicts (OpenRLHF's
// convert_token_to_id of --placeholder_token and --reward_tokens).
type Tokens struct {
	Placeholder int32
	// Reward are the reward tokens' ids (nil: the whole vocabulary is the
	// classifier); Names their strings, in the same order.
	Reward []int32
	Names  []string
}

// NewTokens resolves the placeholder and the reward tokens with tok.
func NewTokens(tok tokenizer.Tokenizer, placeholder string, reward []string) (Tokens, error) {
	var t Tokens
	id, err := prmodel.TokenID(tok, placeholder)
	if err != nil {
		return t, fmt.Errorf("prm: placeholder token: %w", err)
	}
	t.Placeholder = id
	for _, r := range reward {
		id, err := prmodel.TokenID(tok, r)
		if err != nil {
			return t, fmt.Errorf("prm: reward token: %w", err)
		}
		if id == t.Placeholder || slices.Contains(t.Reward, id) {
			return t, fmt.Errorf("prm: reward token %q has id %d, which the placeholder or another reward token already has", r, id)
		}
		t.Reward = append(t.Reward, id)
		t.Names = append(t.Names, r)
	}
	return t, nil
}

// Classes is the width of the classifier: the number of reward tokens,
// or vocab when there are none.
func (t Tokens) Classes(vocab int) int {
	if len(t.Reward) > 0 {
		return len(t.Reward)
	}
	return vocab
}

// Reader turns dataset records into samples.
type Reader struct {
	Tok      tokenizer.Tokenizer
	Tokens   Tokens
	InputKey string // the step-tagged text
	LabelKey string // one label per step tag
	MaxLen   int    // token budget; later tokens (and their tags) are cut
}

// Read reads the dataset files of spec (data.ReadFiles) into samples. A
// record that cannot be a PRM sample — no step tag, a label count that is
// not the tag count, a label that is not a reward token, hard labels mixed
// with soft ones — is an error naming its file and line; a record whose
// tags all lie past MaxLen is skipped and reported.
func (r Reader) Read(spec string, maxSamples int) ([]Sample, *data.Report, error) {
	recs, rep, err := data.ReadFiles(spec, maxSamples)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Sample, 0, len(recs))
	soft := -1 // unknown until the first record
	truncated := 0
	for _, rec := range recs {
		s, cut, err := r.sample(rec)
		if err != nil {
			return nil, rep, fmt.Errorf("prm: %s: %w", rec.Pos, err)
		}
		if cut {
			truncated++
		}
		if len(s.Tags) == 0 {
			rep.Skip(rec.Pos, fmt.Sprintf("every step tag lies past max_len %d", r.MaxLen))
			continue
		}
		isSoft := b2i(s.Soft != nil)
		if soft >= 0 && soft != isSoft {
			return nil, rep, fmt.Errorf("prm: %s: %s labels after %s ones: a dataset holds one kind", rec.Pos, kindName(isSoft), kindName(soft))
		}
		soft = isSoft
		out = append(out, s)
	}
	rep.Used, rep.Truncated = len(out), truncated
	if err := rep.Err(); err != nil {
		return nil, rep, err
	}
	return out, rep, nil
}

func kindName(soft int) string {
	if soft == 1 {
		return "soft (numeric)"
	}
	return "hard (token)"
}

// sample encodes one record; cut reports that it was truncated.
func (r Reader) sample(rec data.Record) (s Sample, cut bool, err error) {
	text, err := stringField(rec, r.InputKey)
	if err != nil {
		return s, false, err
	}
	raw, ok := rec.Fields[r.LabelKey]
	if !ok {
		return s, false, fmt.Errorf("missing label key %q", r.LabelKey)
	}
	var labels []json.RawMessage
	if err := json.Unmarshal(raw, &labels); err != nil || len(labels) == 0 {
		return s, false, fmt.Errorf("key %q must be a non-empty list of labels, one per step tag", r.LabelKey)
	}
	ids := r.Tok.Encode(text) // no BOS/EOS: OpenRLHF's add_special_tokens=False
	var tags []int
	for i, id := range ids {
		if int32(id) == r.Tokens.Placeholder {
			tags = append(tags, i)
		}
	}
	if len(tags) == 0 {
		return s, false, fmt.Errorf("no step tag: key %q holds no placeholder token (id %d); end every step with it (--placeholder_token)", r.InputKey, r.Tokens.Placeholder)
	}
	if len(labels) != len(tags) {
		return s, false, fmt.Errorf("%d labels for %d step tags", len(labels), len(tags))
	}
	s.Pos = rec.Pos
	if len(ids) > r.MaxLen {
		ids, cut = ids[:r.MaxLen], true
	}
	s.IDs = make([]int32, len(ids))
	for i, id := range ids {
		s.IDs[i] = int32(id)
	}
	for _, t := range tags {
		if t < len(ids) {
			s.Tags = append(s.Tags, t)
		}
	}
	if len(s.Tags) == 0 {
		return s, cut, nil
	}
	labels = labels[:len(s.Tags)] // OpenRLHF keeps the labels of the tags that survive truncation
	if isString(labels) {
		s.Hard, err = r.hard(labels)
	} else {
		s.Soft, err = r.soft(labels)
	}
	return s, cut, err
}

// hard turns token labels into classes.
func (r Reader) hard(labels []json.RawMessage) ([]int32, error) {
	out := make([]int32, len(labels))
	for i, l := range labels {
		var name string
		if err := json.Unmarshal(l, &name); err != nil {
			return nil, fmt.Errorf("label %d: %s is not a string like the first label", i+1, l)
		}
		if r.Tokens.Reward != nil {
			k := slices.Index(r.Tokens.Names, name)
			if k < 0 {
				return nil, fmt.Errorf("label %d: %q is not a reward token (%q)", i+1, name, r.Tokens.Names)
			}
			out[i] = int32(k)
			continue
		}
		id, err := prmodel.TokenID(r.Tok, name)
		if err != nil {
			return nil, fmt.Errorf("label %d: %w", i+1, err)
		}
		out[i] = id
	}
	return out, nil
}

// soft reads probabilities of the positive reward token.
func (r Reader) soft(labels []json.RawMessage) ([]float32, error) {
	if len(r.Tokens.Reward) != 2 {
		return nil, fmt.Errorf("soft (numeric) labels need exactly two reward tokens, positive then negative (--reward_tokens), not %d", len(r.Tokens.Reward))
	}
	out := make([]float32, len(labels))
	for i, l := range labels {
		var p float64
		if err := json.Unmarshal(l, &p); err != nil {
			return nil, fmt.Errorf("label %d: %s is neither a reward token nor a number", i+1, l)
		}
		if math.IsNaN(p) || p < 0 || p > 1 {
			return nil, fmt.Errorf("label %d: soft label %v is not a probability in [0, 1]", i+1, p)
		}
		out[i] = float32(p)
	}
	return out, nil
}

func isString(labels []json.RawMessage) bool {
	b := bytes.TrimSpace(labels[0])
	return len(b) > 0 && b[0] == '"'
}

func stringField(rec data.Record, key string) (string, error) {
	raw, ok := rec.Fields[key]
	if !ok {
		return "", fmt.Errorf("missing input key %q", key)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("key %q must be a string (the step-tagged text)", key)
	}
	return s, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
