package group

import (
	"context"

	"github.com/gorlhf/gorlhf/internal/role"
)

// Critic is a role.Critic over the ranks of a data-parallel critic.
type Critic struct {
	checkpointer
	ranks []role.Critic
}

var _ role.Critic = (*Critic)(nil)

// NewCritic returns the critic whose ranks are ranks, in rank order.
func NewCritic(ranks []role.Critic, opts ...Option) (*Critic, error) {
	g, err := newFanout("critic", len(ranks), opts)
	if err != nil {
		return nil, err
	}
	cs := make([]role.Checkpointer, len(ranks))
	for i, r := range ranks {
		cs[i] = r
	}
	return &Critic{checkpointer: checkpointer{fanout: g, ranks: cs}, ranks: ranks}, nil
}

// Ranks are the group's ranks, in order.
func (c *Critic) Ranks() []role.Critic { return c.ranks }

// Values implements role.Critic: each rank computes its share of the
// sequences.
func (c *Critic) Values(ctx context.Context, req role.ValuesRequest) (role.ValuesResult, error) {
	v, err := c.split(ctx, "values", req.Seqs, func(ctx context.Context, r int, s role.Sequences) (role.PerToken, error) {
		res, err := c.ranks[r].Values(ctx, role.ValuesRequest{Seqs: s, Pack: req.Pack})
		return res.Values, err
	})
	return role.ValuesResult{Values: v}, err
}

// TrainStep implements role.Critic: each rank runs its equal share of the
// micro-batches with the whole step's loss norm; the results are merged.
func (c *Critic) TrainStep(ctx context.Context, req role.CriticStep) (role.CriticStepResult, error) {
	sh, err := c.micro(len(req.MicroBatches))
	if err != nil {
		return role.CriticStepResult{}, err
	}
	req.Norm = stepNorm(req.Norm, len(req.MicroBatches), func(i int) role.Sequences { return req.MicroBatches[i].Seqs })
	res := make([]role.CriticStepResult, c.n)
	err = c.each(ctx, "train step", func(ctx context.Context, r int) error {
		share := req
		share.MicroBatches = req.MicroBatches[sh[r][0]:sh[r][1]]
		var err error
		res[r], err = c.ranks[r].TrainStep(ctx, share)
		return err
	})
	if err != nil {
		return role.CriticStepResult{}, err
	}
	out := role.CriticStepResult{GradNorm: res[0].GradNorm, Skipped: res[0].Skipped}
	norms, skipped := make([]float64, len(res)), make([]bool, len(res))
	var w weighted
	for r, x := range res {
		norms[r], skipped[r] = x.GradNorm, x.Skipped
		out.Loss += x.Loss
		out.Tokens += x.Tokens
		w.add(float64(x.Tokens), x.ClipFrac, x.ValueMean)
	}
	m := w.means()
	out.ClipFrac, out.ValueMean = m[0], m[1]
	return out, c.agreeNorm(norms, skipped)
}

// Reference is a role.Reference over several replicas of the frozen
// reference (a colocated actor+ref group): each computes its share of the
// sequences.
type Reference struct {
	fanout
	ranks []role.Reference
}

var _ role.Reference = (*Reference)(nil)

// NewReference returns the reference whose replicas are ranks.
func NewReference(ranks []role.Reference, opts ...Option) (*Reference, error) {
	g, err := newFanout("reference", len(ranks), opts)
	if err != nil {
		return nil, err
	}
	return &Reference{fanout: g, ranks: ranks}, nil
}

// LogProbs implements role.LogProber.
func (f *Reference) LogProbs(ctx context.Context, req role.LogProbsRequest) (role.LogProbsResult, error) {
	lp, err := f.split(ctx, "log-probs", req.Seqs, func(ctx context.Context, r int, s role.Sequences) (role.PerToken, error) {
		res, err := f.ranks[r].LogProbs(ctx, role.LogProbsRequest{Seqs: s, Pack: req.Pack})
		return res.LogProbs, err
	})
	return role.LogProbsResult{LogProbs: lp}, err
}
