package inproc

import (
	"context"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/role"
)

// Reference serves log-probs of a frozen model. It only reads the model,
// so it may share the weights with anything else that only reads them
// (the loaded base model, while the actor trains a Clone). Safe for
// concurrent use.
type Reference struct {
	model        model.CausalLM
	forwardBatch int
}

// NewReference returns a reference over m, which must not change while
// the reference is in use.
func NewReference(m model.CausalLM, forwardBatch int) *Reference {
	return &Reference{model: m, forwardBatch: forwardBatch}
}

var _ role.Reference = (*Reference)(nil)

// LogProbs implements role.LogProber.
func (r *Reference) LogProbs(ctx context.Context, req role.LogProbsRequest) (role.LogProbsResult, error) {
	if err := ctx.Err(); err != nil {
		return role.LogProbsResult{}, err
	}
	lp, err := forwardLogProbs(r.model, req.Seqs, r.forwardBatch, req.Pack)
	if err != nil {
		return role.LogProbsResult{}, fmt.Errorf("inproc: reference: %w", err)
	}
	return role.LogProbsResult{LogProbs: lp}, nil
}

// Reward scores rollouts with a reward.Source (a reward model, a rule
// grader, a remote server or a mix). Safe for concurrent use, as every
// Source is.
type Reward struct {
	src reward.Source
}

// NewReward returns the role over src.
func NewReward(src reward.Source) *Reward { return &Reward{src: src} }

var _ role.Reward = (*Reward)(nil)

// Score implements role.Reward.
func (r *Reward) Score(ctx context.Context, req role.ScoreRequest) (role.ScoreResult, error) {
	rs, err := r.src.Score(ctx, req.Samples)
	if err != nil {
		return role.ScoreResult{}, err
	}
	if len(rs) != len(req.Samples) {
		return role.ScoreResult{}, fmt.Errorf("inproc: reward: %d results for %d samples", len(rs), len(req.Samples))
	}
	return role.ScoreResult{Results: rs}, nil
}

// Rollout generates with a generate.Engine, which owns its own copy of
// the policy and changes it only through LoadWeights. Safe for concurrent
// use.
type Rollout struct {
	engine *generate.Engine
	// base, when set, is the model the engine started from, kept
	// unmerged: a weight sync that carries LoRA adapters alone is merged
	// into it (adapter output scale: scale) before the engine loads it.
	base  model.CausalLM
	scale float32
}

// NewRollout returns the role over e (the caller closes e).
func NewRollout(e *generate.Engine) *Rollout { return &Rollout{engine: e} }

var _ role.Rollout = (*Rollout)(nil)

// Generate implements role.Rollout.
func (r *Rollout) Generate(ctx context.Context, req role.GenerateRequest) (role.GenerateResult, error) {
	before := r.engine.Stats()
	res, err := r.engine.Generate(ctx, engineRequests(req.Prompts))
	if err != nil {
		return role.GenerateResult{}, fmt.Errorf("inproc: rollout: %w", err)
	}
	// the counters' growth during the call (calls that overlap share it)
	after := r.engine.Stats()
	use := role.PrefixCacheUse{QueryTokens: after.PrefixQueryTokens - before.PrefixQueryTokens,
		HitTokens: after.PrefixHitTokens - before.PrefixHitTokens}
	return role.GenerateResult{Results: generations(res), PrefixCache: use}, nil
}

// LoadWeights implements role.Rollout. The engine copies the parameters
// in, between model steps, after the requests it admitted are done.
func (r *Rollout) LoadWeights(ctx context.Context, w role.Weights) error {
	if w.Version < 1 {
		return fmt.Errorf("inproc: rollout: weight version %d must be ≥ 1 (0 is the initial policy)", w.Version)
	}
	ps := ModelParams(w.Params)
	if r.base != nil && lora.IsAdapterPayload(paramNames(w.Params)) {
		var err error
		if ps, err = lora.Merged(r.base, ps, r.scale); err != nil {
			return fmt.Errorf("inproc: rollout: weight version %d: %w", w.Version, err)
		}
	}
	if err := r.engine.LoadWeights(ctx, generate.Weights{Params: ps, Version: w.Version}); err != nil {
		return fmt.Errorf("inproc: rollout: %w", err)
	}
	return nil
}

func paramNames(ps []role.Param) []string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return names
}
