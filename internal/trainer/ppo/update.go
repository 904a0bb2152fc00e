package ppo

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// updateStats collects the optimizer steps of one iteration.
type updateStats struct {
	actor        []role.ActorStepResult
	critic       []role.CriticStepResult
	actorLR      float64 // learning rate of the last actor step
	criticLR     float64
	actorUpdated bool // at least one actor step was applied
}

// update runs the PPO epochs: each epoch shuffles the batch and cuts it
// into optimizer steps of train.batch_size samples, each of
// train.micro_batch_size micro-batches; every step updates the critic and,
// after the warm-up of critic.freezing_steps iterations, the actor. A
// batch that dynamic filtering could not fill ends with a smaller step
// (without filtering the batch is a multiple of train.batch_size).
func (t *Trainer) update(ctx context.Context, e *experience, r *rollout, m *phaseTimer) (updateStats, error) {
	defer m.phase("train")()
	var st updateStats
	trainActor := t.iter >= t.cfg.Critic.FreezingSteps
	b, bs := r.seqs.Len(), t.cfg.Train.BatchSize
	for range t.cfg.Train.MaxEpochs {
		order := t.permutation(b)
		for lo := 0; lo < b; lo += bs {
			micro := split(order[lo:min(lo+bs, b)], t.cfg.Train.MicroBatchSize)
			norm := stepNorm(r.seqs, micro)
			if t.roles.Critic != nil {
				if err := t.criticStep(ctx, e, r, micro, norm, &st); err != nil {
					return st, err
				}
			}
			if trainActor {
				if err := t.actorStep(ctx, e, r, micro, norm, &st); err != nil {
					return st, err
				}
			}
		}
	}
	return st, nil
}

// actorStep sends one optimizer step to the actor.
func (t *Trainer) actorStep(ctx context.Context, e *experience, r *rollout, micro [][]int, norm rl.LossNorm, st *updateStats) error {
	loss := rl.ActorLossConfig{Policy: t.cfg.Actor.PolicyLoss, EntropyCoef: t.cfg.Actor.EntropyCoef}
	klLoss := t.cfg.Algo.KL.UseLoss && e.refLP != nil
	if klLoss {
		loss.KLCoef, loss.KLEstimator = t.kl.Coef, t.cfg.Algo.KL.Estimator
	}
	req := role.ActorStep{Loss: loss, Norm: norm, LR: t.actor.sched.LR(t.actor.steps), MaxNorm: t.cfg.Actor.Optim.MaxNorm,
		Pack: t.cfg.DS.PackingSamples}
	for _, idx := range micro {
		mb := role.ActorMicroBatch{Seqs: r.seqs.Select(idx), Advantages: e.advRows.Select(idx)}
		e.off.actorInputs(&mb, idx)
		if klLoss {
			mb.RefLogProbs = e.refLP.Select(idx)
		}
		req.MicroBatches = append(req.MicroBatches, mb)
	}
	res, err := t.roles.Actor.TrainStep(ctx, req)
	if err != nil {
		return fmt.Errorf("ppo: actor step: %w", err)
	}
	st.actor, st.actorLR = append(st.actor, res), req.LR
	st.actorUpdated = st.actorUpdated || !res.Skipped
	return t.actor.count(res.Skipped, res.Loss, res.GradNorm, "actor", t.cfg.Train.MaxNonFinite)
}

// criticStep sends one optimizer step to the critic.
func (t *Trainer) criticStep(ctx context.Context, e *experience, r *rollout, micro [][]int, norm rl.LossNorm, st *updateStats) error {
	req := role.CriticStep{Loss: t.cfg.Critic.ValueLoss, Norm: norm, LR: t.critic.sched.LR(t.critic.steps), MaxNorm: t.cfg.Critic.Optim.MaxNorm,
		Pack: t.cfg.DS.PackingSamples}
	for _, idx := range micro {
		req.MicroBatches = append(req.MicroBatches, role.CriticMicroBatch{Seqs: r.seqs.Select(idx),
			OldValues: e.values.Select(idx), Returns: e.retRows.Select(idx)})
	}
	res, err := t.roles.Critic.TrainStep(ctx, req)
	if err != nil {
		return fmt.Errorf("ppo: critic step: %w", err)
	}
	st.critic, st.criticLR = append(st.critic, res), req.LR
	return t.critic.count(res.Skipped, res.Loss, res.GradNorm, "critic", t.cfg.Train.MaxNonFinite)
}

// count advances the schedule by one step and fails after limit
// consecutive skipped (non-finite) steps.
func (s *schedule) count(skipped bool, loss, gradNorm float64, role string, limit int) error {
	s.steps++
	if err := s.skips.Count(skipped, limit); err != nil {
		return fmt.Errorf("ppo: %s step %d: %w (loss %g, grad norm %g); lower the learning rate or check the rewards",
			role, s.steps, err, loss, gradNorm)
	}
	return nil
}

// permutation is a shuffle of 0…n−1 drawn from the run's generator.
func (t *Trainer) permutation(n int) []int {
	return rand.New(t.rng).Perm(n)
}

// split cuts idx into consecutive micro-batches of size.
func split(idx []int, size int) [][]int {
	var out [][]int
	for lo := 0; lo < len(idx); lo += size {
		out = append(out, idx[lo:min(lo+size, len(idx))])
	}
	return out
}

// stepNorm is the token and sequence count of one optimizer step, so the
// micro-batch losses add up to the step's loss (never a division by the
// number of micro-batches).
func stepNorm(s role.Sequences, micro [][]int) rl.LossNorm {
	masks := make([]*tensor.Tensor, len(micro))
	for i, idx := range micro {
		masks[i] = s.Select(idx).Mask()
	}
	return rl.StepLossNorm(masks...)
}
