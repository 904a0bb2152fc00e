package inproc

import (
	"context"
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Actor trains a policy in this process, alone or as one rank of a
// data-parallel group (NewActorRank). It owns the model it is given:
// pass a Clone when the same weights also serve elsewhere (reference,
// rollout). Not safe for concurrent use.
type Actor struct {
	trainable    // m.Module is the policy; Config and Files are written with it
	forwardBatch int
}

// NewActor returns an actor training m.Module with AdamW in this process.
// forwardBatch bounds the sequences of one inference pass in LogProbs
// (≤ 0: all). Each step clips at its own ActorStep.MaxNorm.
func NewActor(m train.Model, adam optim.Config, forwardBatch int) (*Actor, error) {
	return NewActorRank(nil, m, train.OptimizerConfig{Adam: adam}, forwardBatch)
}

// NewActorRank returns one rank of an actor trained data-parallel over
// comm (nil: this process alone) with oc (ZeRO stage, AdamW, the clip
// every step must ask for, gradient checkpointing). Every rank of comm
// calls it at once with identical weights. The group is driven by
// package role/group, which calls every rank for every method.
func NewActorRank(comm collective.Comm, m train.Model, oc train.OptimizerConfig, forwardBatch int) (*Actor, error) {
	t, err := newTrainable("actor", comm, m, oc)
	if err != nil {
		return nil, err
	}
	return &Actor{trainable: t, forwardBatch: forwardBatch}, nil
}

var _ role.Actor = (*Actor)(nil)

// LogProbs implements role.LogProber. On a data-parallel group each rank
// is given its share of the sequences; at ZeRO stage 3 the whole model
// is all-gathered around the pass (every rank must call it, with a share
// or with none).
func (a *Actor) LogProbs(ctx context.Context, req role.LogProbsRequest) (role.LogProbsResult, error) {
	if err := ctx.Err(); err != nil {
		return role.LogProbsResult{}, err
	}
	var lp role.PerToken
	err := a.gathered(ctx, func() error {
		var err error
		lp, err = forwardLogProbs(a.m.Module, req.Seqs, a.forwardBatch, req.Pack)
		return err
	})
	if err != nil {
		return role.LogProbsResult{}, fmt.Errorf("inproc: actor: %w", err)
	}
	return role.LogProbsResult{LogProbs: lp}, nil
}

// TrainStep implements role.Actor. On a data-parallel group each rank
// runs its share of the step's micro-batches, req.Norm being the whole
// step's (when unset, the ranks sum theirs); gradients are reduced over
// the ranks, and the result holds this rank's loss terms and metrics with
// the group's gradient norm.
func (a *Actor) TrainStep(ctx context.Context, req role.ActorStep) (role.ActorStepResult, error) {
	var res role.ActorStepResult
	if err := checkActorStep(req); err != nil {
		return res, err
	}
	seqs := func(i int) role.Sequences { return req.MicroBatches[i].Seqs }
	norm, err := a.prepareStep(ctx, req.Norm, req.MaxNorm, len(req.MicroBatches), seqs)
	if err != nil {
		return res, err
	}
	var w weighted
	micro := func(i int) {
		mb := req.MicroBatches[i]
		a.microStep(layoutOf(mb.Seqs, req.Pack), mb, req.Loss, norm, &res, &w)
	}
	res.GradNorm, res.Skipped, err = a.runStep(ctx, len(req.MicroBatches), micro, func() float64 { return res.Loss }, req.LR)
	if err != nil {
		return res, err
	}
	w.finish(&res)
	return res, nil
}

// checkActorStep validates the micro-batches against the loss terms.
func checkActorStep(req role.ActorStep) error {
	if len(req.MicroBatches) == 0 {
		return errors.New("inproc: actor step without micro-batches")
	}
	errs := []error{req.Loss.Validate()}
	for i, mb := range req.MicroBatches {
		if err := mb.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("micro-batch %d: %w", i, err))
		} else if req.Loss.KLCoef > 0 && mb.RefLogProbs == nil {
			errs = append(errs, fmt.Errorf("micro-batch %d: a KL loss term needs reference log-probs", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("inproc: actor step: %w", err)
	}
	return nil
}

// microStep runs forward and backward over one micro-batch laid out as l,
// adding its gradients to the parameters and its metrics to res and w.
// The loss is rl.ActorObjective's; the actor only supplies the policy's
// log-probs and entropy.
func (a *Actor) microStep(l layout, mb role.ActorMicroBatch, lc rl.ActorLossConfig, norm rl.LossNorm, res *role.ActorStepResult, w *weighted) {
	mask := mb.Seqs.Mask()
	tp := tensor.Recycled(&a.tape) // the last micro-batch's tensors are dead
	lp, logits := l.logProbs(tp, a.m.Module)
	var entTape *tensor.Tape
	if lc.TrainsEntropy() {
		entTape = tp
	}
	ent := l.actions(entTape, tensor.Entropy(entTape, logits))
	var ref *tensor.Tensor
	if lc.KLCoef > 0 {
		ref = mb.RefLogProbs.Pad(l.a)
	}
	var isWeights *tensor.Tensor
	if mb.ISWeights != nil {
		isWeights = mb.ISWeights.Pad(l.a)
	}
	loss, m := rl.ActorObjective(tp, lc, lp, ent, mb.OldLogProbs.Pad(l.a), mb.Advantages.Pad(l.a), ref, isWeights, mask, norm)
	tp.Backward(loss)
	pm := m.Policy
	res.Loss += m.Loss
	res.PolicyLoss += pm.Loss
	res.KLLoss += m.KL
	res.Tokens += int(m.Tokens)
	w.add(m.Tokens, map[string]float64{"entropy": m.Entropy, "clip": pm.ClipFrac, "dual": pm.DualClipFrac,
		"approx_kl": pm.ApproxKL, "ratio": pm.RatioMean})
	res.RatioMax = max(res.RatioMax, pm.RatioMax)
}

// weighted averages per-micro-batch metrics by their token counts.
type weighted struct {
	n    float64
	sums map[string]float64
}

func (w *weighted) add(n float64, vals map[string]float64) {
	if w.sums == nil {
		w.sums = map[string]float64{}
	}
	w.n += n
	for k, v := range vals {
		w.sums[k] += n * v
	}
}

func (w *weighted) mean(k string) float64 {
	if w.n == 0 {
		return 0
	}
	return w.sums[k] / w.n
}

// finish writes the token-weighted means into res.
func (w *weighted) finish(res *role.ActorStepResult) {
	res.Entropy, res.ClipFrac, res.DualClip = w.mean("entropy"), w.mean("clip"), w.mean("dual")
	res.ApproxKL, res.RatioMean = w.mean("approx_kl"), w.mean("ratio")
}

func maskSum(mask *tensor.Tensor) float64 {
	var n float64
	for _, m := range mask.Data {
		n += float64(m)
	}
	return n
}
