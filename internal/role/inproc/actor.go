package inproc

import (
	"context"
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Actor trains a policy in this process. It owns the model it is given:
// pass a Clone when the same weights also serve elsewhere (reference,
// rollout). Not safe for concurrent use.
type Actor struct {
	trainable    // m.Module is the policy; Config and Files are written with it
	forwardBatch int
}

// NewActor returns an actor training m.Module with AdamW. forwardBatch
// bounds the sequences of one inference pass in LogProbs (≤ 0: all).
func NewActor(m train.Model, adam optim.Config, forwardBatch int) (*Actor, error) {
	params := m.Module.Params()
	opt, err := optim.New(params, adam)
	if err != nil {
		return nil, fmt.Errorf("inproc: actor: %w", err)
	}
	return &Actor{trainable: trainable{m: m, params: params, opt: opt}, forwardBatch: forwardBatch}, nil
}

var _ role.Actor = (*Actor)(nil)

// LogProbs implements role.LogProber.
func (a *Actor) LogProbs(ctx context.Context, req role.LogProbsRequest) (role.LogProbsResult, error) {
	if err := ctx.Err(); err != nil {
		return role.LogProbsResult{}, err
	}
	lp, err := forwardLogProbs(a.m.Module, req.Seqs, a.forwardBatch, req.Pack)
	if err != nil {
		return role.LogProbsResult{}, fmt.Errorf("inproc: actor: %w", err)
	}
	return role.LogProbsResult{LogProbs: lp}, nil
}

// TrainStep implements role.Actor.
func (a *Actor) TrainStep(ctx context.Context, req role.ActorStep) (role.ActorStepResult, error) {
	var res role.ActorStepResult
	if err := checkActorStep(req); err != nil {
		return res, err
	}
	norm := req.Norm
	if norm == (rl.LossNorm{}) {
		norm = stepNorm(len(req.MicroBatches), func(i int) role.Sequences { return req.MicroBatches[i].Seqs })
	}
	a.params.ZeroGrad()
	var w weighted
	for _, mb := range req.MicroBatches {
		if err := ctx.Err(); err != nil {
			a.params.ZeroGrad()
			return res, err
		}
		a.microStep(layoutOf(mb.Seqs, req.Pack), mb, req.Loss, norm, &res, &w)
	}
	w.finish(&res)
	res.GradNorm, res.Skipped = applyStep(a.params, a.opt, res.Loss, req.LR, req.MaxNorm)
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
	tp := tensor.NewTape()
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
	loss, m := rl.ActorObjective(tp, lc, lp, ent, mb.OldLogProbs.Pad(l.a), mb.Advantages.Pad(l.a), ref, mask, norm)
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

// trainable is what the actor and the critic share: the model they
// train, its parameters and their optimizer, with Weights and the
// role.Checkpointer methods.
type trainable struct {
	m      train.Model
	params nn.Params
	opt    *optim.AdamW
}

// Weights implements role.Actor: copies of every parameter (the critic's
// are for inspection; the rollout engine never needs them).
func (t *trainable) Weights(ctx context.Context) (role.Weights, error) {
	if err := ctx.Err(); err != nil {
		return role.Weights{}, err
	}
	return role.Weights{Params: copyParams(t.params)}, nil
}

// Save implements role.Checkpointer.
func (t *trainable) Save(ctx context.Context, req role.SaveRequest) (role.SaveResult, error) {
	return save(ctx, t.m, t.opt, req)
}

// Load implements role.Checkpointer.
func (t *trainable) Load(ctx context.Context, req role.LoadRequest) (role.LoadResult, error) {
	return restore(ctx, t.params, t.opt, req)
}

// Export implements role.Checkpointer.
func (t *trainable) Export(ctx context.Context, req role.ExportRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return train.SaveModel(req.Dir, t.m)
}

// --- shared by the trainable roles

// applyStep finishes an optimizer step whose gradients are in params
// (train.StepGuard.Apply: nothing is applied when loss or the gradient
// norm is not finite; gradients are zeroed either way). The driver counts
// the skipped steps.
func applyStep(params nn.Params, opt *optim.AdamW, loss, lr, maxNorm float64) (gradNorm float64, skipped bool) {
	g := train.StepGuard{Params: params, Opt: opt, MaxNorm: maxNorm}
	u := g.Apply(loss, lr)
	return u.GradNorm, u.Skipped
}

// stepNorm is rl.StepLossNorm over the masks of n micro-batches.
func stepNorm(n int, seqs func(i int) role.Sequences) rl.LossNorm {
	masks := make([]*tensor.Tensor, n)
	for i := range n {
		masks[i] = seqs(i).Mask()
	}
	return rl.StepLossNorm(masks...)
}

// save writes a checkpoint of m and opt with the driver's state.
func save(ctx context.Context, m train.Model, opt *optim.AdamW, req role.SaveRequest) (role.SaveResult, error) {
	if err := ctx.Err(); err != nil {
		return role.SaveResult{}, err
	}
	keep := max(req.Keep, 1)
	dir, err := train.SaveCheckpoint(req.Root, m, opt, train.State{Step: req.Step, Extra: req.State}, keep)
	return role.SaveResult{Dir: dir}, err
}

// restore loads weights and optimizer state from a checkpoint folder.
func restore(ctx context.Context, params nn.Params, opt *optim.AdamW, req role.LoadRequest) (role.LoadResult, error) {
	if err := ctx.Err(); err != nil {
		return role.LoadResult{}, err
	}
	st, err := train.LoadCheckpoint(req.Dir, params, opt)
	if err != nil {
		return role.LoadResult{}, err
	}
	return role.LoadResult{Step: st.Step, State: st.Extra}, nil
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
