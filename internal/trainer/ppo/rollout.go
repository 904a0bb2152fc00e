package ppo

import (
	"context"
	"fmt"
	"slices"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/role"
)

// rollout is one batch of generated samples: the G samples of each prompt
// are contiguous rows (prompt p owns rows p·G … p·G+G−1, as package rl
// expects).
type rollout struct {
	prompts  []Prompt // one per row
	g        int      // samples per prompt
	seqs     role.Sequences
	texts    []string // decoded responses, EOS left out
	finish   []role.FinishReason
	engineLP role.PerToken       // log π under the raw model, from the engine
	versions []int64             // the weight version behind each sample
	prefix   role.PrefixCacheUse // the rollout engine's prefix caching for these samples
	// results are the rewards, when the rollout was scored while it was
	// collected (dynamic filtering, an environment's episodes); nil means
	// makeExperience scores it.
	results []grade.Result
}

// nextPrompts takes the next rollout.batch_size prompts of the shuffled
// dataset (a new epoch starts when fewer remain).
func (t *Trainer) nextPrompts() []Prompt {
	idx := t.sampler.Next(t.cfg.Rollout.BatchSize)
	out := make([]Prompt, len(idx))
	for i, j := range idx {
		out[i] = t.prompts[j]
	}
	return out
}

// samplingParams are the rollout's sampling settings (seeds set per prompt).
func (t *Trainer) samplingParams() role.SamplingParams {
	r := t.cfg.Rollout
	return role.SamplingParams{N: t.cfg.Algo.Advantage.SamplesPerPrompt, MaxNewTokens: r.MaxNewTokens,
		Temperature: float32(r.Temperature), TopP: float32(r.TopP), TopK: r.TopK, StopStrings: r.Stop}
}

// generate samples p.N completions of every prompt with the published
// policy, drawing the seeds from the run's generator.
func (t *Trainer) generate(ctx context.Context, prompts []Prompt, p role.SamplingParams, m *phaseTimer) (*rollout, error) {
	defer m.phase("generation")()
	return t.sample(ctx, prompts, p, t.rng.Uint64())
}

// sample asks the rollout role for p.N completions of every prompt;
// prompt i is sampled with seed base+i, so a result depends only on the
// prompt, its seed and the weights.
// With an environment (Config.Agent) every sample is a multi-turn
// episode instead (agent.go), scored by the environment.
func (t *Trainer) sample(ctx context.Context, prompts []Prompt, p role.SamplingParams, base uint64) (*rollout, error) {
	if t.agent != nil {
		return t.sampleEpisodes(ctx, prompts, p, base)
	}
	seeds := make([]uint64, len(prompts))
	for i := range prompts {
		seeds[i] = base + uint64(i)
	}
	return t.sampleWith(ctx, prompts, p, seeds)
}

// sampleIdx samples the dataset prompts idx with the rollout's sampling
// settings, prompt i with seed base+i (as sample does).
func (t *Trainer) sampleIdx(ctx context.Context, idx []int, base uint64) (*rollout, error) {
	seeds := make([]uint64, len(idx))
	for i := range idx {
		seeds[i] = base + uint64(i)
	}
	return t.sampleSeeds(ctx, idx, seeds)
}

// sampleSeeds samples the dataset prompts idx, prompt i with seeds[i].
func (t *Trainer) sampleSeeds(ctx context.Context, idx []int, seeds []uint64) (*rollout, error) {
	prompts := make([]Prompt, len(idx))
	for i, j := range idx {
		prompts[i] = t.prompts[j]
	}
	return t.sampleWith(ctx, prompts, t.samplingParams(), seeds)
}

// sampleWith asks the rollout role for p.N completions of every prompt,
// prompt i with seeds[i] (single-turn).
func (t *Trainer) sampleWith(ctx context.Context, prompts []Prompt, p role.SamplingParams, seeds []uint64) (*rollout, error) {
	reqs := make([]role.Prompt, len(prompts))
	for i, pr := range prompts {
		q := p
		q.Seed = seeds[i]
		reqs[i] = role.Prompt{ID: fmt.Sprint(i), Tokens: pr.IDs, Params: q}
	}
	res, err := t.roles.Rollout.Generate(ctx, role.GenerateRequest{Prompts: reqs})
	if err != nil {
		return nil, fmt.Errorf("ppo: generate: %w", err)
	}
	if len(res.Results) != len(prompts) {
		return nil, fmt.Errorf("ppo: generate: %d results for %d prompts", len(res.Results), len(prompts))
	}
	r, err := t.collect(prompts, res.Results, max(p.N, 1))
	if err != nil {
		return nil, err
	}
	r.prefix = res.PrefixCache
	return r, nil
}

// collect lays the completions out as prompt+response sequences.
func (t *Trainer) collect(prompts []Prompt, results []role.Generation, g int) (*rollout, error) {
	r := &rollout{g: g}
	for i, res := range results {
		if len(res.Completions) != g {
			return nil, fmt.Errorf("ppo: generate: prompt %d has %d completions, want %d", i, len(res.Completions), g)
		}
		for _, c := range res.Completions {
			if len(c.Tokens) == 0 || len(c.RawLogProbs) != len(c.Tokens) {
				return nil, fmt.Errorf("ppo: generate: prompt %d sample %d has %d tokens and %d log-probs", i, c.Index, len(c.Tokens), len(c.RawLogProbs))
			}
			p := prompts[i]
			r.prompts = append(r.prompts, p)
			r.seqs.Tokens = append(r.seqs.Tokens, append(slices.Clone(p.IDs), c.Tokens...))
			r.seqs.PromptLens = append(r.seqs.PromptLens, len(p.IDs))
			r.texts = append(r.texts, t.decode(c.Tokens))
			r.finish = append(r.finish, c.FinishReason)
			r.engineLP = append(r.engineLP, slices.Clone(c.RawLogProbs))
			r.versions = append(r.versions, c.WeightVersion)
		}
	}
	return r, nil
}

// decode returns a response's text without a final EOS token.
func (t *Trainer) decode(ids []int32) string {
	if n := len(ids); n > 0 && slices.Contains(t.eos, ids[n-1]) {
		ids = ids[:n-1]
	}
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return t.rt.Tok.Decode(out)
}

// truncated reports which samples hit the token budget.
func (r *rollout) truncated() []bool {
	out := make([]bool, len(r.finish))
	for i, f := range r.finish {
		out[i] = f == role.FinishLength
	}
	return out
}
