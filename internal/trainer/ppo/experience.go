package ppo

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// experience is what one rollout batch trains on (OpenRLHF's Experience):
// per-token quantities as ragged rows over the response tokens, plus the
// [B, A] tensors package rl worked on.
type experience struct {
	results  []grade.Result
	rewards  []float32 // after the length penalties: what advantages start from
	oldLP    role.PerToken
	refLP    role.PerToken // nil without a reference
	values   role.PerToken // nil without a critic
	mask     *tensor.Tensor
	kl       *tensor.Tensor // [B, A] KL(π_old‖π_ref) per token; nil without a reference
	klMean   float64        // mean over sequences of the per-token mean KL (OpenRLHF's "kl")
	adv      rl.AdvantageOutputs
	advRows  role.PerToken
	retRows  role.PerToken
	overlong int // samples the overlong penalty touched
	stopCut  int // truncated samples the stop-properly penalty touched
	tokens   int // prompt+response tokens of the batch

	// off is π_old against the rollout engine's log-probs (offpolicy.go).
	off offPolicy
}

// makeExperience scores the rollout, gathers log-probs and values from the
// roles and turns rewards into advantages and returns.
func (t *Trainer) makeExperience(ctx context.Context, r *rollout, m *phaseTimer) (*experience, error) {
	defer m.phase("experience")()
	e := &experience{mask: r.seqs.Mask()}
	for _, s := range r.seqs.Tokens {
		e.tokens += len(s)
	}
	// 3) rewards from the reward role (unless dynamic filtering already
	//    scored the samples to choose them), and 4) log π_old (actor),
	//    log π_ref (reference), V (critic): one after another, or all at
	//    once when the roles live in separate processes (Runtime.Overlap)
	e.results = r.results
	score := func() error {
		if e.results != nil {
			return nil
		}
		done := m.phase("reward")
		results, err := t.score(ctx, r)
		done()
		e.results = results
		return err
	}
	if !t.rt.Overlap {
		if err := score(); err != nil {
			return nil, err
		}
		if err := t.modelOutputs(ctx, r, e, m); err != nil {
			return nil, err
		}
	} else if err := t.overlapped(ctx, r, e, m, score); err != nil {
		return nil, err
	}
	t.offPolicy(r, e)
	// 5) length penalties, KL shaping, advantages and returns
	return e, t.advantages(r, e)
}

// score asks the reward role for every sample's reward. A reward model
// reads its score at EOS, where its trainer put it, so a truncated
// response is scored with an EOS appended (its tokens are not changed).
// A rollout the environment already scored (multi-turn episodes) keeps
// its results.
func (t *Trainer) score(ctx context.Context, r *rollout) ([]grade.Result, error) {
	if r.results != nil {
		return r.results, nil
	}
	samples := make([]grade.Sample, r.seqs.Len())
	for i, toks := range r.seqs.Tokens {
		if r.finish[i] == role.FinishLength && len(t.eos) > 0 {
			toks = append(slices.Clone(toks), t.eos[0])
		}
		p := r.prompts[i]
		samples[i] = grade.Sample{Prompt: p.Text, Response: r.texts[i], Label: p.Label, Tokens: toks,
			ResponseTokens: r.seqs.ResponseLen(i), FinishReason: string(r.finish[i])}
	}
	res, err := t.roles.Reward.Score(ctx, role.ScoreRequest{Samples: samples})
	if err != nil {
		return nil, fmt.Errorf("ppo: reward: %w", err)
	}
	if len(res.Results) != len(samples) {
		return nil, fmt.Errorf("ppo: reward: %d results for %d samples", len(res.Results), len(samples))
	}
	return res.Results, nil
}

// modelOutputs fills the log-probs and values of the experience, one
// role after another.
func (t *Trainer) modelOutputs(ctx context.Context, r *rollout, e *experience, m *phaseTimer) error {
	for _, f := range t.outputCalls(ctx, r, e, m) {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// overlapped runs score and every model-output call concurrently and
// returns the first error in phase order (reward, actor, reference,
// critic), so the error does not depend on timing.
func (t *Trainer) overlapped(ctx context.Context, r *rollout, e *experience, m *phaseTimer, score func() error) error {
	calls := append([]func() error{score}, t.outputCalls(ctx, r, e, m)...)
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, f := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// outputCalls are the calls that fill log π_old, log π_ref and V; each
// writes its own field of e.
func (t *Trainer) outputCalls(ctx context.Context, r *rollout, e *experience, m *phaseTimer) []func() error {
	lens := r.seqs.ResponseLens()
	calls := []func() error{func() error {
		if t.cfg.Train.EngineLogProbs {
			e.oldLP = r.engineLP
			return checkRows("actor log-probs", e.oldLP, lens)
		}
		return t.logProbs(ctx, m, t.roles.Actor, "actor_logprobs", "actor log-probs", r, lens, &e.oldLP)
	}}
	if t.roles.Reference != nil {
		calls = append(calls, func() error {
			return t.logProbs(ctx, m, t.roles.Reference, "reference", "reference log-probs", r, lens, &e.refLP)
		})
	}
	if t.roles.Critic != nil {
		calls = append(calls, func() error {
			done := m.phase("critic_values")
			res, err := t.roles.Critic.Values(ctx, role.ValuesRequest{Seqs: r.seqs, Pack: t.cfg.DS.PackingSamples})
			done()
			if err != nil {
				return fmt.Errorf("ppo: critic values: %w", err)
			}
			e.values = res.Values
			return checkRows("critic values", e.values, lens)
		})
	}
	return calls
}

// logProbs fills dst with p's log-probs of the rollout's sequences, timed
// as phase and checked against the response lengths lens.
func (t *Trainer) logProbs(ctx context.Context, m *phaseTimer, p role.LogProber, phase, what string, r *rollout, lens []int, dst *role.PerToken) error {
	done := m.phase(phase)
	res, err := p.LogProbs(ctx, role.LogProbsRequest{Seqs: r.seqs, Pack: t.cfg.DS.PackingSamples})
	done()
	if err != nil {
		return fmt.Errorf("ppo: %s: %w", what, err)
	}
	*dst = res.LogProbs
	return checkRows(what, *dst, lens)
}

// advantages applies the length penalties and rl.ComputeAdvantages: group
// baseline, reward clipping, −β·KL on every token (unless the KL is a loss
// term), GAE or discounted returns, and global whitening.
func (t *Trainer) advantages(r *rollout, e *experience) error {
	c := t.cfg
	a := r.seqs.Width()
	e.rewards, e.overlong, e.stopCut = c.Reward.Length.Apply(grade.Rewards(e.results), r.seqs.ResponseLens(), r.truncated(), c.Rollout.MaxNewTokens)
	in := rl.AdvantageInputs{Rewards: e.rewards, Mask: e.mask}
	if e.refLP != nil {
		e.kl = rl.KL(nil, e.oldLP.Pad(a), e.refLP.Pad(a), c.Algo.KL.Estimator)
		e.klMean = meanRowMean(e.kl, e.mask)
		if !c.Algo.KL.UseLoss {
			in.KL, in.KLCoef = e.kl, t.kl.Coef
		}
	}
	if e.values != nil {
		in.Values = e.values.Pad(a)
	}
	out, err := rl.ComputeAdvantages(c.Algo.Advantage, in)
	if err != nil {
		return fmt.Errorf("ppo: advantages: %w", err)
	}
	e.adv = out
	lens := r.seqs.ResponseLens()
	e.advRows, e.retRows = role.Unpad(out.Advantages, lens), role.Unpad(out.Returns, lens)
	return nil
}

// checkRows verifies one row of the right length per sequence.
func checkRows(what string, p role.PerToken, lens []int) error {
	if len(p) != len(lens) {
		return fmt.Errorf("ppo: %s: %d rows for %d sequences", what, len(p), len(lens))
	}
	for i, row := range p {
		if len(row) != lens[i] {
			return fmt.Errorf("ppo: %s: row %d has %d values for %d response tokens", what, i, len(row), lens[i])
		}
	}
	return nil
}

// meanRowMean is the mean over rows of each row's masked mean (rows with
// an empty mask count as 0): OpenRLHF's masked_mean(x, mask, dim=-1).mean().
func meanRowMean(x, mask *tensor.Tensor) float64 {
	b, a := mask.Shape[0], mask.Shape[1]
	if b == 0 {
		return 0
	}
	var total float64
	for i := range b {
		var s, n float64
		for j := range a {
			m := float64(mask.Data[i*a+j])
			s += float64(x.Data[i*a+j]) * m
			n += m
		}
		if n > 0 {
			total += s / n
		}
	}
	return total / float64(b)
}
