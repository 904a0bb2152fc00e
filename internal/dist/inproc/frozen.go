package inproc

import (
	"context"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/dist"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/reward"
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

var _ dist.Reference = (*Reference)(nil)

// LogProbs implements dist.LogProber.
func (r *Reference) LogProbs(ctx context.Context, req dist.LogProbsRequest) (dist.LogProbsResult, error) {
	if err := ctx.Err(); err != nil {
		return dist.LogProbsResult{}, err
	}
	lp, err := forwardLogProbs(r.model, req.Seqs, r.forwardBatch)
	if err != nil {
		return dist.LogProbsResult{}, fmt.Errorf("inproc: reference: %w", err)
	}
	return dist.LogProbsResult{LogProbs: lp}, nil
}

// Reward scores rollouts with a reward.Source (a reward model, a rule
// grader, a remote server or a mix). Safe for concurrent use, as every
// Source is.
type Reward struct {
	src reward.Source
}

// NewReward returns the role over src.
func NewReward(src reward.Source) *Reward { return &Reward{src: src} }

var _ dist.Reward = (*Reward)(nil)

// Score implements dist.Reward.
func (r *Reward) Score(ctx context.Context, req dist.ScoreRequest) (dist.ScoreResult, error) {
	rs, err := r.src.Score(ctx, req.Samples)
	if err != nil {
		return dist.ScoreResult{}, err
	}
	if len(rs) != len(req.Samples) {
		return dist.ScoreResult{}, fmt.Errorf("inproc: reward: %d results for %d samples", len(rs), len(req.Samples))
	}
	return dist.ScoreResult{Results: rs}, nil
}

// Rollout generates with a generate.Engine, which owns its own copy of
// the policy and changes it only through LoadWeights. Safe for concurrent
// use.
type Rollout struct {
	engine *generate.Engine
}

// NewRollout returns the role over e (the caller closes e).
func NewRollout(e *generate.Engine) *Rollout { return &Rollout{engine: e} }

var _ dist.Rollout = (*Rollout)(nil)

// Generate implements dist.Rollout.
func (r *Rollout) Generate(ctx context.Context, req dist.GenerateRequest) (dist.GenerateResult, error) {
	res, err := r.engine.Generate(ctx, req.Requests)
	if err != nil {
		return dist.GenerateResult{}, fmt.Errorf("inproc: rollout: %w", err)
	}
	return dist.GenerateResult{Results: res}, nil
}

// LoadWeights implements dist.Rollout. The engine copies the parameters
// in, between model steps, after the requests it admitted are done.
func (r *Rollout) LoadWeights(ctx context.Context, w dist.Weights) error {
	if w.Version < 1 {
		return fmt.Errorf("inproc: rollout: weight version %d must be ≥ 1 (0 is the initial policy)", w.Version)
	}
	if err := r.engine.LoadWeights(ctx, generate.Weights{Params: w.Params, Version: w.Version}); err != nil {
		return fmt.Errorf("inproc: rollout: %w", err)
	}
	return nil
}
