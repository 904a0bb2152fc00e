package group

import (
	"context"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/role"
)

// Actor is a role.Actor over the ranks of a data-parallel actor.
type Actor struct {
	checkpointer
	ranks []role.Actor
}

var _ role.Actor = (*Actor)(nil)

// NewActor returns the actor whose ranks are ranks, in rank order.
func NewActor(ranks []role.Actor, opts ...Option) (*Actor, error) {
	g, err := newFanout("actor", len(ranks), opts)
	if err != nil {
		return nil, err
	}
	cs := make([]role.Checkpointer, len(ranks))
	for i, r := range ranks {
		cs[i] = r
	}
	return &Actor{checkpointer: checkpointer{fanout: g, ranks: cs}, ranks: ranks}, nil
}

// Ranks are the group's ranks, in order.
func (a *Actor) Ranks() []role.Actor { return a.ranks }

// LogProbs implements role.LogProber: each rank computes its share of the
// sequences.
func (a *Actor) LogProbs(ctx context.Context, req role.LogProbsRequest) (role.LogProbsResult, error) {
	lp, err := a.split(ctx, "log-probs", req.Seqs, func(ctx context.Context, r int, s role.Sequences) (role.PerToken, error) {
		res, err := a.ranks[r].LogProbs(ctx, role.LogProbsRequest{Seqs: s, Pack: req.Pack})
		return res.LogProbs, err
	})
	return role.LogProbsResult{LogProbs: lp}, err
}

// TrainStep implements role.Actor: each rank runs its equal share of the
// micro-batches with the whole step's loss norm; the results are merged.
func (a *Actor) TrainStep(ctx context.Context, req role.ActorStep) (role.ActorStepResult, error) {
	sh, err := a.micro(len(req.MicroBatches))
	if err != nil {
		return role.ActorStepResult{}, err
	}
	req.Norm = stepNorm(req.Norm, len(req.MicroBatches), func(i int) role.Sequences { return req.MicroBatches[i].Seqs })
	res := make([]role.ActorStepResult, a.n)
	err = a.each(ctx, "train step", func(ctx context.Context, r int) error {
		share := req
		share.MicroBatches = req.MicroBatches[sh[r][0]:sh[r][1]]
		var err error
		res[r], err = a.ranks[r].TrainStep(ctx, share)
		return err
	})
	if err != nil {
		return role.ActorStepResult{}, err
	}
	return a.merge(res)
}

// merge adds up the ranks' step results.
func (a *Actor) merge(res []role.ActorStepResult) (role.ActorStepResult, error) {
	out := role.ActorStepResult{GradNorm: res[0].GradNorm, Skipped: res[0].Skipped}
	norms, skipped := make([]float64, len(res)), make([]bool, len(res))
	var w weighted
	for r, x := range res {
		norms[r], skipped[r] = x.GradNorm, x.Skipped
		out.Loss += x.Loss
		out.PolicyLoss += x.PolicyLoss
		out.KLLoss += x.KLLoss
		out.Tokens += x.Tokens
		out.RatioMax = max(out.RatioMax, x.RatioMax)
		w.add(float64(x.Tokens), x.Entropy, x.ClipFrac, x.DualClip, x.ApproxKL, x.RatioMean)
	}
	m := w.means()
	out.Entropy, out.ClipFrac, out.DualClip, out.ApproxKL, out.RatioMean = m[0], m[1], m[2], m[3], m[4]
	return out, a.agreeNorm(norms, skipped)
}

// Weights implements role.Actor: every rank takes part (ZeRO stage 3
// gathers the weights), rank 0's copy is returned.
func (a *Actor) Weights(ctx context.Context) (role.Weights, error) {
	var w role.Weights
	err := a.Publish(ctx, func(ctx context.Context, r int, x role.Actor) error {
		got, err := x.Weights(ctx)
		if r == 0 {
			w = got
		}
		return err
	})
	return w, err
}

// Publish runs f for every rank at once: f must have rank 0 hand its
// weights on (to the caller, or straight to a rollout engine), while the
// other ranks only take part in gathering them (ZeRO stage 3: rank 0 can
// read the whole model only while every rank gathers with it; a
// data-parallel rank above 0 returns no weights).
func (a *Actor) Publish(ctx context.Context, f func(ctx context.Context, rank int, r role.Actor) error) error {
	return a.each(ctx, "weights", func(ctx context.Context, r int) error { return f(ctx, r, a.ranks[r]) })
}

// weighted is a token-weighted mean of several metrics.
type weighted struct {
	n    float64
	sums []float64
}

func (w *weighted) add(n float64, vals ...float64) {
	if w.sums == nil {
		w.sums = make([]float64, len(vals))
	}
	w.n += n
	for i, v := range vals {
		w.sums[i] += n * v
	}
}

func (w *weighted) means() []float64 {
	out := make([]float64, len(w.sums))
	for i, s := range w.sums {
		if w.n > 0 {
			out[i] = s / w.n
		}
	}
	return out
}

// String names the group, e.g. "actor group of 2 ranks".
func (a *Actor) String() string { return fmt.Sprintf("actor group of %d ranks", a.n) }
