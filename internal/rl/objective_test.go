package rl

import (
	"math"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// objectiveBatch is newPolicyBatch plus reference log-probs and a
// per-token entropy.
type objectiveBatch struct {
	policyBatch
	ref, ent *tensor.Tensor
}

func newObjectiveBatch() objectiveBatch {
	p := newPolicyBatch()
	ref := p.old.Clone()
	d := uniform(14, -0.3, 0.3, 4, 5)
	for i := range ref.Data {
		ref.Data[i] += d.Data[i]
	}
	return objectiveBatch{policyBatch: p, ref: ref, ent: uniform(15, 0.5, 3, 4, 5)}
}

// run evaluates ActorObjective with a fresh tape (entropy on it only when
// the config trains it) and returns the loss, the metrics and the
// gradients w.r.t. the log-probs and the entropy.
func (o objectiveBatch) run(cfg ActorLossConfig, norm LossNorm) (float32, ActorMetrics, []float32, []float32) {
	lp, ent := param(o.lp), o.ent.Clone()
	ent.RequiresGrad = cfg.TrainsEntropy()
	tp := tensor.NewTape()
	loss, m := ActorObjective(tp, cfg, lp, ent, o.old, o.adv, o.ref, nil, o.mask, norm)
	tp.Backward(loss)
	return loss.Item(), m, lp.Grad, ent.Grad
}

func actorConfigs() map[string]ActorLossConfig {
	out := map[string]ActorLossConfig{}
	for name, pc := range policyConfigs() {
		out[name] = ActorLossConfig{Policy: pc}
		out[name+"+kl+entropy"] = ActorLossConfig{Policy: pc, KLCoef: 0.1, KLEstimator: K3, EntropyCoef: 0.01}
	}
	return out
}

func TestActorObjective(t *testing.T) {
	o := newObjectiveBatch()
	// The objective is the sum of its documented terms, each aggregated
	// the same way (GSPO forcing seq_mean_token_mean on all of them).
	t.Run("Terms", func(t *testing.T) {
		for name, cfg := range actorConfigs() {
			t.Run(name, func(t *testing.T) {
				loss, m, _, _ := o.run(cfg, LossNorm{})
				agg := cfg.Policy.Aggregation
				if cfg.Policy.Type == PolicyGSPO {
					agg = SeqMeanTokenMean
				}
				pl, pm := PolicyLoss(nil, cfg.Policy, o.lp, o.old, o.adv, nil, o.mask, LossNorm{})
				want := float64(pl.Item())
				var kl float64
				if cfg.KLCoef > 0 {
					kl = float64(KLLoss(nil, o.lp, o.ref, o.mask, cfg.KLEstimator, agg, LossNorm{}).Item())
					want += cfg.KLCoef * kl
				}
				if cfg.EntropyCoef != 0 {
					want -= cfg.EntropyCoef * float64(Aggregate(nil, o.ent, o.mask, agg, LossNorm{}).Item())
				}
				if math.Abs(float64(loss)-want) > 1e-6 || m.Loss != float64(loss) {
					t.Fatalf("loss %v (metrics %v), want %v", loss, m.Loss, want)
				}
				if m.Policy != pm || m.KL != kl {
					t.Fatalf("metrics %+v, want policy %+v and KL %v", m, pm, kl)
				}
				if m.Tokens != 12 {
					t.Fatalf("%v tokens, want 12", m.Tokens)
				}
				var s float64
				for i, v := range o.mask.Data {
					s += float64(o.ent.Data[i] * v)
				}
				if math.Abs(m.Entropy-s/12) > 1e-6 {
					t.Fatalf("entropy %v, want the masked mean %v", m.Entropy, s/12)
				}
			})
		}
	})
	// GSPO's terms use seq_mean_token_mean even when the policy config
	// says token_mean, and that is not the same number here.
	t.Run("GSPOAggregation", func(t *testing.T) {
		cfg := actorConfigs()["gspo+kl+entropy"]
		if cfg.Policy.Aggregation != TokenMean || cfg.Aggregation() != SeqMeanTokenMean {
			t.Fatalf("aggregation %s → %s", cfg.Policy.Aggregation, cfg.Aggregation())
		}
		seq := KLLoss(nil, o.lp, o.ref, o.mask, K3, SeqMeanTokenMean, LossNorm{}).Item()
		tok := KLLoss(nil, o.lp, o.ref, o.mask, K3, TokenMean, LossNorm{}).Item()
		_, m, _, _ := o.run(cfg, LossNorm{})
		if m.KL != float64(seq) || seq == tok {
			t.Fatalf("KL term %v, want the sequence-mean %v (token-mean %v)", m.KL, seq, tok)
		}
	})
	// The tape's gradients w.r.t. log-probs and entropy match central
	// finite differences.
	t.Run("GradCheck", func(t *testing.T) {
		for name, cfg := range actorConfigs() {
			t.Run(name, func(t *testing.T) {
				lp, ent := param(o.lp), param(o.ent)
				in := []*tensor.Tensor{lp}
				if cfg.TrainsEntropy() {
					in = append(in, ent)
				}
				f := func(tp *tensor.Tape) *tensor.Tensor {
					loss, _ := ActorObjective(tp, cfg, lp, ent, o.old, o.adv, o.ref, nil, o.mask, LossNorm{})
					return loss
				}
				if err := tt.GradCheck(f, in, 1e-3, 2e-2); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
	// Without a KL term the reference is not read; without an entropy
	// bonus no gradient reaches the entropy.
	t.Run("Optional", func(t *testing.T) {
		cfg := ActorLossConfig{Policy: DefaultPolicyLossConfig()}
		ent := param(o.ent)
		tp := tensor.NewTape()
		loss, m := ActorObjective(tp, cfg, param(o.lp), ent, o.old, o.adv, nil, nil, o.mask, LossNorm{})
		tp.Backward(loss)
		if m.KL != 0 || ent.Grad != nil {
			t.Fatalf("KL %v, entropy gradient %v: want neither", m.KL, ent.Grad)
		}
	})
}

// Micro-batches of one step with the step's LossNorm add up to the whole
// batch: loss, gradients, KL term.
func TestActorObjective_MicroBatchInvariance(t *testing.T) {
	o := newObjectiveBatch()
	rows := func(x *tensor.Tensor, lo, hi int) *tensor.Tensor {
		return tensor.FromSlice(append([]float32(nil), x.Data[lo*5:hi*5]...), hi-lo, 5)
	}
	for name, cfg := range actorConfigs() {
		t.Run(name, func(t *testing.T) {
			whole, mWhole, gWhole, eWhole := o.run(cfg, LossNorm{})
			parts := [][2]int{{0, 1}, {1, 4}}
			var masks []*tensor.Tensor
			for _, r := range parts {
				masks = append(masks, rows(o.mask, r[0], r[1]))
			}
			norm := StepLossNorm(masks...)
			var sum float32
			var kl float64
			var grad, egrad []float32
			for _, r := range parts {
				sub := func(x *tensor.Tensor) *tensor.Tensor { return rows(x, r[0], r[1]) }
				q := objectiveBatch{policyBatch{lp: sub(o.lp), old: sub(o.old), adv: sub(o.adv), mask: sub(o.mask)}, sub(o.ref), sub(o.ent)}
				l, m, g, e := q.run(cfg, norm)
				sum, kl = sum+l, kl+m.KL
				grad, egrad = append(grad, g...), append(egrad, e...)
			}
			if math.Abs(float64(sum-whole)) > 1e-6 || math.Abs(kl-mWhole.KL) > 1e-6 {
				t.Fatalf("micro-batches add to loss %v, KL %v; whole batch %v, %v", sum, kl, whole, mWhole.KL)
			}
			if e := tt.MaxRelErr(grad, gWhole, 1e-9); e > 1e-6 {
				t.Fatalf("log-prob gradients differ: max rel err %v", e)
			}
			if cfg.TrainsEntropy() {
				if e := tt.MaxRelErr(egrad, eWhole, 1e-9); e > 1e-6 {
					t.Fatalf("entropy gradients differ: max rel err %v", e)
				}
			}
		})
	}
}

func TestActorLossConfig_Validate(t *testing.T) {
	ok := ActorLossConfig{Policy: DefaultPolicyLossConfig(), KLCoef: 0.1, KLEstimator: K2, EntropyCoef: 0.01}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*ActorLossConfig)
		want string
	}{
		{"NegativeKL", func(c *ActorLossConfig) { c.KLCoef = -1 }, "must be ≥ 0"},
		{"NaNEntropy", func(c *ActorLossConfig) { c.EntropyCoef = math.NaN() }, "must be ≥ 0"},
		{"Estimator", func(c *ActorLossConfig) { c.KLEstimator = "k9" }, "KL estimator"},
		{"Policy", func(c *ActorLossConfig) { c.Policy.Type = "trpo" }, "policy loss type"},
	} {
		c := ok
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}
