// Package rmodel is the reward source backed by a reward model run in
// this process (an HF *ForSequenceClassification folder, such as one
// written by gorlhf train rm or OpenRLHF): Source implements
// reward.Source, Load opens a model folder with its tokenizer.
package rmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Config configures a reward-model source.
type Config struct {
	// Model is the reward model (a *ForSequenceClassification model).
	Model *head.ScoreModel
	// Tok is the reward model's tokenizer.
	Tok tokenizer.Tokenizer
	// MaxLen is the token budget of one sequence (OpenRLHF --data.max_len,
	// default 2048); longer sequences keep their first MaxLen tokens, the
	// last of which becomes EOS. It is lowered to the model's position
	// limit when the architecture has one (GPT-2).
	MaxLen int
	// BatchSize is the number of sequences per forward pass.
	BatchSize int
	// Normalize reports (r − mean)/std with the mean and std stored in the
	// model's config.json (OpenRLHF --reward.normalize_enable).
	Normalize bool
	// ParseSpecial encodes special tokens written in the text (such as
	// "<|im_end|>" or "</s>" in an OpenRLHF query) as their ids. OpenRLHF's
	// queries are decoded with special tokens kept, so this is on by
	// default.
	ParseSpecial bool
}

// DefaultConfig has OpenRLHF's serve_rm defaults (max_len 2048) and
// batches of 16; Model and Tok must be set.
func DefaultConfig() Config {
	return Config{MaxLen: 2048, BatchSize: 16, ParseSpecial: true}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Model == nil:
		return errors.New("rmodel: no model")
	case c.Tok == nil:
		return errors.New("rmodel: no tokenizer")
	case c.MaxLen < 2:
		return fmt.Errorf("rmodel: max len %d must be ≥ 2", c.MaxLen)
	case c.BatchSize < 1:
		return fmt.Errorf("rmodel: batch size %d must be ≥ 1", c.BatchSize)
	}
	return nil
}

// Source scores samples with a reward model in this process: each
// sequence is framed as the reward trainer frames it, run through the
// backbone, and the head's value at its last token is the reward
// (OpenRLHF: the value at the last non-pad token, which is EOS). Safe for
// concurrent use: inference keeps no state.
type Source struct {
	cfg      Config
	vocab    int // 0 = unknown
	bos, eos int32
}

// New returns a source for cfg.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Source{cfg: cfg}
	d := cfg.Model.Backbone.Dims()
	m.vocab = d.Vocab
	if d.MaxPositions > 0 {
		m.cfg.MaxLen = min(m.cfg.MaxLen, d.MaxPositions)
	}
	sp := cfg.Tok.Specials()
	m.bos, m.eos = int32(sp.BOS), int32(sp.EOS)
	return m, nil
}

// MaxLen is the effective token budget.
func (m *Source) MaxLen() int { return m.cfg.MaxLen }

// Encode returns the token ids the model scores for s.
//
// With s.Tokens set they are used as they are (the rollout engine's ids,
// BOS and EOS already where generation put them). Otherwise s.Text(),
// trailing newlines removed, is tokenized and framed as the reward
// trainer frames its pairs: BOS first and EOS last when the tokenizer
// defines them and they are not already there. Both paths then apply
// MaxLen (the last kept token becomes EOS) and check every id against
// the model's vocabulary.
func (m *Source) Encode(s grade.Sample) ([]int32, error) {
	var ids []int32
	if len(s.Tokens) > 0 {
		ids = slices.Clone(s.Tokens)
	} else {
		text := strings.TrimRight(s.Text(), "\n")
		for _, id := range m.cfg.Tok.EncodeWith(text, tokenizer.EncodeOptions{ParseSpecial: m.cfg.ParseSpecial}) {
			ids = append(ids, int32(id))
		}
		if m.bos >= 0 && (len(ids) == 0 || ids[0] != m.bos) {
			ids = append([]int32{m.bos}, ids...)
		}
		if m.eos >= 0 && (len(ids) == 0 || ids[len(ids)-1] != m.eos) {
			ids = append(ids, m.eos)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("empty sequence (no text, no tokens, and the tokenizer has no BOS/EOS)")
	}
	if len(ids) > m.cfg.MaxLen {
		ids = ids[:m.cfg.MaxLen]
		if m.eos >= 0 {
			ids[len(ids)-1] = m.eos
		}
	}
	for i, id := range ids {
		if id < 0 || (m.vocab > 0 && int(id) >= m.vocab) {
			return nil, fmt.Errorf("token %d (position %d) is outside the model's vocabulary [0, %d)", id, i, m.vocab)
		}
	}
	return ids, nil
}

// Score implements reward.Source. Sequences are sorted by length and run in
// batches of BatchSize, right-padded (the model is causal, so padding
// after a sequence does not change its last token's value).
func (m *Source) Score(ctx context.Context, samples []grade.Sample) ([]grade.Result, error) {
	seqs := make([][]int32, len(samples))
	for i, s := range samples {
		ids, err := m.Encode(s)
		if err != nil {
			return nil, fmt.Errorf("rmodel: sample %d: %w", i, err)
		}
		seqs[i] = ids
	}
	order := make([]int, len(seqs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(seqs[a]) - len(seqs[b]) })
	vals := make([]float32, len(seqs))
	for lo := 0; lo < len(order); lo += m.cfg.BatchSize {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idx := order[lo:min(lo+m.cfg.BatchSize, len(order))]
		for k, r := range m.forward(seqs, idx) {
			vals[idx[k]] = r
		}
	}
	norm := m.cfg.Model.Norm
	norm.Normalize = m.cfg.Normalize
	norm.Apply(vals)
	out := make([]grade.Result, len(vals))
	for i, v := range vals {
		out[i] = grade.Result{Reward: float64(v), Score: float64(v)}
	}
	return out, grade.CheckResults(out, len(samples))
}

// forward scores the sequences seqs[idx[…]] in one pass.
func (m *Source) forward(seqs [][]int32, idx []int) []float32 {
	t := 0
	for _, i := range idx {
		t = max(t, len(seqs[i]))
	}
	b := len(idx)
	ids, pos := make([]int32, b*t), make([]int32, b*t)
	last := make([]int, b)
	for k, i := range idx {
		copy(ids[k*t:], seqs[i])
		for j := range t {
			pos[k*t+j] = int32(j)
		}
		last[k] = len(seqs[i]) - 1
	}
	return m.cfg.Model.Rewards(nil, ids, pos, nil, b, t, last).Data
}

// LoadOptions configures Load.
type LoadOptions struct {
	// Load is passed to load.Open (Hub cache, logger, head prefix).
	Load load.Options
	// Tokenizer is a tokenizer file or folder; "" uses the model's own
	// (load.OpenOptions.Tokenizer).
	Tokenizer string
	// Config supplies MaxLen, BatchSize, Normalize and ParseSpecial; its
	// Model and Tok are filled in.
	Config Config
}

// Load loads a reward model (an HF *ForSequenceClassification folder,
// such as one written by gorlhf train rm or OpenRLHF) and its tokenizer,
// opened as a model bundle (load.Open).
func Load(ref string, o LoadOptions) (*Source, *load.Loaded, error) {
	b, err := load.Open(ref, load.OpenOptions{Load: o.Load, Tokenizer: o.Tokenizer})
	if err != nil {
		return nil, nil, fmt.Errorf("rmodel: %w (a tokenizer can be passed explicitly)", err)
	}
	if b.Score == nil {
		return nil, nil, fmt.Errorf("rmodel: %s is a %s, not a reward model (want a *ForSequenceClassification model with a score head)", ref, b.Arch)
	}
	cfg := o.Config
	cfg.Model, cfg.Tok = b.Score, b.Tok
	src, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	return src, b.Loaded, nil
}
