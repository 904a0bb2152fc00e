package prmodel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Aggregation turns a solution's step scores into one reward.
type Aggregation string

// The aggregations: the weakest step (Math-Shepherd's verification
// score), the product (the probability that every step is right, as in
// Lightman et al.'s "Let's Verify Step by Step"), the mean, and the last
// step's score.
const (
	Min  Aggregation = "min"
	Prod Aggregation = "prod"
	Mean Aggregation = "mean"
	Last Aggregation = "last"
)

// String implements flag.Value.
func (a *Aggregation) String() string { return string(*a) }

// Set implements flag.Value.
func (a *Aggregation) Set(s string) error {
	v := Aggregation(s)
	if err := v.Validate(); err != nil {
		return err
	}
	*a = v
	return nil
}

// Validate checks the name.
func (a Aggregation) Validate() error {
	switch a {
	case Min, Prod, Mean, Last:
		return nil
	}
	return fmt.Errorf("prmodel: aggregation %q: want min, prod, mean or last", string(a))
}

// Apply aggregates step scores; no step scores 0.
func (a Aggregation) Apply(steps []float64) float64 {
	if len(steps) == 0 {
		return 0
	}
	switch a {
	case Prod:
		p := 1.0
		for _, s := range steps {
			p *= s
		}
		return p
	case Mean:
		var sum float64
		for _, s := range steps {
			sum += s
		}
		return sum / float64(len(steps))
	case Last:
		return steps[len(steps)-1]
	}
	return slices.Min(steps)
}

// Config configures a PRM source.
type Config struct {
	Model model.CausalLM      // the PRM
	Tok   tokenizer.Tokenizer // its tokenizer
	// Spec names the step tag and the two reward tokens (positive first).
	Spec        Spec
	Aggregation Aggregation
	MaxLen      int // tokens per sequence; later tokens and tags are cut
	BatchSize   int // sequences per forward pass
}

// DefaultConfig aggregates with min over batches of 16 sequences of at
// most 2048 tokens; Model, Tok and Spec must be set.
func DefaultConfig() Config {
	return Config{Aggregation: Min, MaxLen: 2048, BatchSize: 16}
}

// Source scores samples with a PRM in this process. Safe for concurrent
// use: inference keeps no state.
type Source struct {
	cfg           Config
	tag, pos, neg int32
}

// New resolves the step tag and reward tokens with the tokenizer.
func New(cfg Config) (*Source, error) {
	var errs []error
	if cfg.Model == nil || cfg.Tok == nil {
		errs = append(errs, errors.New("prmodel: a model and its tokenizer are required"))
	}
	if len(cfg.Spec.RewardTokens) != 2 {
		errs = append(errs, fmt.Errorf("prmodel: a PRM reward needs two reward tokens, positive then negative, not %q", cfg.Spec.RewardTokens))
	}
	if cfg.MaxLen < 2 || cfg.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("prmodel: max len %d must be ≥ 2 and batch size %d ≥ 1", cfg.MaxLen, cfg.BatchSize))
	}
	errs = append(errs, cfg.Aggregation.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if p := cfg.Model.Dims().MaxPositions; p > 0 {
		cfg.MaxLen = min(cfg.MaxLen, p)
	}
	s := &Source{cfg: cfg}
	var err error
	if s.tag, err = TokenID(cfg.Tok, cfg.Spec.PlaceholderToken); err != nil {
		return nil, fmt.Errorf("prmodel: placeholder token: %w", err)
	}
	if s.pos, err = TokenID(cfg.Tok, cfg.Spec.RewardTokens[0]); err != nil {
		return nil, fmt.Errorf("prmodel: positive reward token: %w", err)
	}
	if s.neg, err = TokenID(cfg.Tok, cfg.Spec.RewardTokens[1]); err != nil {
		return nil, fmt.Errorf("prmodel: negative reward token: %w", err)
	}
	return s, nil
}

// TagSteps ends every step of a response with the step tag: a response
// that already holds the tag is kept as it is; otherwise each non-empty
// line is a step and gets " "+tag at its end.
func TagSteps(response, tag string) string {
	if strings.Contains(response, tag) {
		return response
	}
	lines := strings.Split(strings.TrimRight(response, "\n"), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = strings.TrimRight(l, " ") + " " + tag
		}
	}
	return strings.Join(lines, "\n")
}

// Encode returns the tokens the PRM reads for s (prompt, then the response
// with its steps tagged, without BOS or EOS, as the PRM trainer reads its
// data) and the positions of the step tags.
func (m *Source) Encode(s grade.Sample) ([]int32, []int) {
	text := s.Prompt + TagSteps(s.Response, m.cfg.Spec.PlaceholderToken)
	if s.Query != "" {
		text = s.Query[:len(s.Query)-len(s.Response)] + TagSteps(s.Response, m.cfg.Spec.PlaceholderToken)
		if !strings.HasSuffix(s.Query, s.Response) {
			text = TagSteps(s.Query, m.cfg.Spec.PlaceholderToken)
		}
	}
	raw := m.cfg.Tok.Encode(text)
	ids := make([]int32, 0, min(len(raw), m.cfg.MaxLen))
	var tags []int
	for i, id := range raw[:min(len(raw), m.cfg.MaxLen)] {
		ids = append(ids, int32(id))
		if int32(id) == m.tag {
			tags = append(tags, i)
		}
	}
	return ids, tags
}

// StepScores returns the PRM's probability of the positive reward token
// at each step tag of each sample (softmax over the two reward tokens).
func (m *Source) StepScores(ctx context.Context, samples []grade.Sample) ([][]float64, error) {
	seqs := make([][]int32, len(samples))
	tags := make([][]int, len(samples))
	order := make([]int, len(samples))
	for i, s := range samples {
		seqs[i], tags[i] = m.Encode(s)
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(seqs[a]) - len(seqs[b]) })
	out := make([][]float64, len(samples))
	for lo := 0; lo < len(order); lo += m.cfg.BatchSize {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idx := order[lo:min(lo+m.cfg.BatchSize, len(order))]
		m.forward(seqs, tags, idx, out)
	}
	return out, nil
}

// forward runs sequences idx in one right-padded pass and fills their
// step scores.
func (m *Source) forward(seqs [][]int32, tags [][]int, idx []int, out [][]float64) {
	t := 1
	for _, i := range idx {
		t = max(t, len(seqs[i]))
	}
	b := len(idx)
	ids, pos := make([]int32, b*t), make([]int32, b*t)
	for k, i := range idx {
		copy(ids[k*t:], seqs[i])
		for j := range t {
			pos[k*t+j] = int32(j)
		}
	}
	logits := m.cfg.Model.Forward(nil, ids, pos, nil, b, t) // [B, T, V]
	v := logits.Dim(-1)
	for k, i := range idx {
		out[i] = make([]float64, len(tags[i]))
		for j, tag := range tags[i] {
			row := logits.Data[(k*t+tag)*v : (k*t+tag+1)*v]
			zp, zn := float64(row[m.pos]), float64(row[m.neg])
			out[i][j] = 1 / (1 + math.Exp(zn-zp)) // softmax([zp, zn])[0]
		}
	}
}

// Score implements reward.Source: the aggregated step scores, in [0, 1]
// (0 for a response with no step); Extra holds the step count.
func (m *Source) Score(ctx context.Context, samples []grade.Sample) ([]grade.Result, error) {
	steps, err := m.StepScores(ctx, samples)
	if err != nil {
		return nil, err
	}
	out := make([]grade.Result, len(samples))
	for i, st := range steps {
		r := m.cfg.Aggregation.Apply(st)
		out[i] = grade.Result{Reward: r, Score: r, Extra: map[string]float64{"prm_steps": float64(len(st))}}
	}
	return out, grade.CheckResults(out, len(samples))
}
