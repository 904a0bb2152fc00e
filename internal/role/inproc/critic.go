package inproc

import (
	"context"
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Critic trains a value model (a backbone with a scalar head) in this
// process, alone or as one rank of a data-parallel group
// (NewCriticRank). It owns its model; pass a Clone of a reward model that
// also scores rollouts. Not safe for concurrent use.
type Critic struct {
	trainable
	model        *head.ScoreModel
	forwardBatch int
}

// NewCritic returns a critic training sm (saved with cfgJSON and files as
// its model folder) with AdamW; forwardBatch bounds one inference pass.
func NewCritic(sm *head.ScoreModel, cfgJSON []byte, files map[string][]byte, adam optim.Config, forwardBatch int) (*Critic, error) {
	return NewCriticRank(nil, sm, cfgJSON, files, train.OptimizerConfig{Adam: adam}, forwardBatch)
}

// NewCriticRank is NewActorRank for the critic.
func NewCriticRank(comm collective.Comm, sm *head.ScoreModel, cfgJSON []byte, files map[string][]byte, oc train.OptimizerConfig, forwardBatch int) (*Critic, error) {
	return newCritic(comm, train.Model{Module: sm, Config: cfgJSON, Files: files}, oc, forwardBatch)
}

// newCritic is NewCriticRank for m, whose Module is a *head.ScoreModel
// (with LoRA adapters when m.Adapters is set).
func newCritic(comm collective.Comm, m train.Model, oc train.OptimizerConfig, forwardBatch int) (*Critic, error) {
	sm, ok := m.Module.(*head.ScoreModel)
	if !ok {
		return nil, fmt.Errorf("inproc: critic: %T is not a score model", m.Module)
	}
	t, err := newTrainable("critic", comm, m, oc)
	if err != nil {
		return nil, err
	}
	return &Critic{trainable: t, model: sm, forwardBatch: forwardBatch}, nil
}

var _ role.Critic = (*Critic)(nil)

// Values implements role.Critic: the head's value at the position just
// before each response token (OpenRLHF's values[:, :-1] over the actions).
func (c *Critic) Values(ctx context.Context, req role.ValuesRequest) (role.ValuesResult, error) {
	if err := ctx.Err(); err != nil {
		return role.ValuesResult{}, err
	}
	if err := req.Seqs.Validate(); err != nil {
		return role.ValuesResult{}, fmt.Errorf("inproc: critic: %w", err)
	}
	out := make(role.PerToken, 0, req.Seqs.Len())
	err := c.gathered(ctx, func() error {
		return chunks(req.Seqs, c.forwardBatch, func(s role.Sequences) error {
			l := layoutOf(s, req.Pack)
			out = append(out, role.Unpad(c.values(nil, l), l.lens)...)
			return nil
		})
	})
	return role.ValuesResult{Values: out}, err
}

// values returns V [B, A] at the response positions of l.
func (c *Critic) values(tp *tensor.Tape, l layout) *tensor.Tensor {
	return l.actions(tp, c.model.Values(tp, l.ids, l.pos, l.seg, l.rows, l.t))
}

// TrainStep implements role.Critic.
func (c *Critic) TrainStep(ctx context.Context, req role.CriticStep) (role.CriticStepResult, error) {
	var res role.CriticStepResult
	if len(req.MicroBatches) == 0 {
		return res, errors.New("inproc: critic step without micro-batches")
	}
	for i, mb := range req.MicroBatches {
		if err := mb.Validate(); err != nil {
			return res, fmt.Errorf("inproc: critic step: micro-batch %d: %w", i, err)
		}
	}
	seqs := func(i int) role.Sequences { return req.MicroBatches[i].Seqs }
	norm, err := c.prepareStep(ctx, req.Norm, req.MaxNorm, len(req.MicroBatches), seqs)
	if err != nil {
		return res, err
	}
	var w weighted
	micro := func(i int) {
		mb := req.MicroBatches[i]
		c.microStep(layoutOf(mb.Seqs, req.Pack), mb, req.Loss, norm, &res, &w)
	}
	res.GradNorm, res.Skipped, err = c.runStep(ctx, len(req.MicroBatches), micro, func() float64 { return res.Loss }, req.LR)
	if err != nil {
		return res, err
	}
	res.ClipFrac, res.ValueMean = w.mean("clip"), w.mean("value")
	return res, nil
}

// microStep runs forward and backward over one micro-batch laid out as l,
// adding its gradients to the parameters and its metrics to res and w.
func (c *Critic) microStep(l layout, mb role.CriticMicroBatch, lc rl.ValueLossConfig, norm rl.LossNorm, res *role.CriticStepResult, w *weighted) {
	mask := mb.Seqs.Mask()
	tp := tensor.Recycled(&c.tape) // the last micro-batch's tensors are dead
	loss, vm := rl.ValueLoss(tp, lc, c.values(tp, l), mb.OldValues.Pad(l.a), mb.Returns.Pad(l.a), mask, norm)
	tp.Backward(loss)
	res.Loss += vm.Loss
	n := maskSum(mask)
	res.Tokens += int(n)
	w.add(n, map[string]float64{"clip": vm.ClipFrac, "value": vm.ValueMean})
}
