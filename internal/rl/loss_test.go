package rl

import (
	"math"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// policyBatch is a small batch with padding, one empty row, and ratios on
// both sides of the clip range.
type policyBatch struct{ lp, old, adv, mask *tensor.Tensor }

func newPolicyBatch() policyBatch {
	mask := rightPadMask(5, 5, 3, 0, 4)
	old := uniform(11, -2, -0.5, 4, 5)
	lp := old.Clone()
	delta := uniform(12, -0.5, 0.5, 4, 5)
	for i := range lp.Data {
		lp.Data[i] += delta.Data[i]
	}
	return policyBatch{lp: lp, old: old, adv: uniform(13, -1, 1, 4, 5), mask: mask}
}

// run evaluates PolicyLoss with a fresh tape and returns loss, metrics and
// the gradient w.r.t. the log-probs.
func (p policyBatch) run(cfg PolicyLossConfig, norm LossNorm) (float32, PolicyMetrics, []float32) {
	lp := param(p.lp)
	tp := tensor.NewTape()
	loss, m := PolicyLoss(tp, cfg, lp, p.old, p.adv, nil, p.mask, norm)
	tp.Backward(loss)
	return loss.Item(), m, lp.Grad
}

func policyConfigs() map[string]PolicyLossConfig {
	d := DefaultPolicyLossConfig()
	higher, dual, seq, gspo := d, d, d, d
	higher.ClipHigh = 0.28
	dual.DualClip = 1.5
	seq.Aggregation = SeqMeanTokenMean
	gspo.Type, gspo.ClipLow, gspo.ClipHigh = PolicyGSPO, 0.03, 0.04
	return map[string]PolicyLossConfig{"ppo": d, "clip_higher": higher, "dual_clip": dual, "seq": seq, "gspo": gspo}
}

func TestPolicyLoss(t *testing.T) {
	p := newPolicyBatch()
	// The tape's gradient matches central finite differences.
	t.Run("GradCheck", func(t *testing.T) {
		for name, cfg := range policyConfigs() {
			t.Run(name, func(t *testing.T) {
				lp := param(p.lp)
				f := func(tp *tensor.Tape) *tensor.Tensor {
					loss, _ := PolicyLoss(tp, cfg, lp, p.old, p.adv, nil, p.mask, LossNorm{})
					return loss
				}
				if err := tt.GradCheck(f, []*tensor.Tensor{lp}, 1e-3, 2e-2); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
	// Junk at masked positions changes neither the loss nor the metrics, and
	// masked positions get no gradient.
	t.Run("MaskedPositionsContributeNothing", func(t *testing.T) {
		for name, cfg := range policyConfigs() {
			t.Run(name, func(t *testing.T) {
				l1, m1, g1 := p.run(cfg, LossNorm{})
				q := policyBatch{lp: scribble(p.lp, p.mask), old: scribble(p.old, p.mask), adv: scribble(p.adv, p.mask), mask: p.mask}
				l2, m2, g2 := q.run(cfg, LossNorm{})
				if l1 != l2 || m1 != m2 {
					t.Fatalf("loss %v → %v, metrics %+v → %+v", l1, l2, m1, m2)
				}
				for i, m := range p.mask.Data {
					if g1[i] != g2[i] || (m == 0 && g1[i] != 0) {
						t.Fatalf("grad[%d] %v → %v (mask %v)", i, g1[i], g2[i], m)
					}
				}
			})
		}
	})
	// ε_low = ε_high is PPO's symmetric clip, built here independently from ops.
	t.Run("ClipHigherEqualIsSymmetric", func(t *testing.T) {
		cfg := DefaultPolicyLossConfig()
		cfg.ClipLow, cfg.ClipHigh = 0.15, 0.15
		got, _, _ := p.run(cfg, LossNorm{})
		ratio := tensor.Exp(nil, tensor.Sub(nil, p.lp, p.old))
		s1 := tensor.Mul(nil, ratio, p.adv)
		s2 := tensor.Mul(nil, tensor.Clamp(nil, ratio, 0.85, 1.15), p.adv)
		want := -tensor.MaskedMean(nil, tensor.Minimum(nil, s1, s2), p.mask).Item()
		if math.Abs(float64(got-want)) > 1e-6 {
			t.Fatalf("loss %v, symmetric PPO %v", got, want)
		}
	})
	// Raising ε_high changes only tokens with Â > 0 and ρ > 1+ε_low.
	t.Run("ClipHigherActsAboveOnly", func(t *testing.T) {
		base := DefaultPolicyLossConfig()
		higher := base
		higher.ClipHigh = 0.5
		_, _, g1 := p.run(base, LossNorm{})
		_, _, g2 := p.run(higher, LossNorm{})
		changed := 0
		for i := range g1 {
			r := math.Exp(float64(p.lp.Data[i] - p.old.Data[i]))
			if g1[i] != g2[i] {
				changed++
				if p.adv.Data[i] <= 0 || r <= 1.2 {
					t.Fatalf("token %d (Â %v, ρ %v) changed with ε_high", i, p.adv.Data[i], r)
				}
			}
		}
		if changed == 0 {
			t.Fatal("no token was affected; the test batch does not exercise clip-higher")
		}
	})
	// Dual clip leaves positive advantages alone and bounds the loss of a
	// negative-advantage token by c·|Â|.
	t.Run("DualClipOnlyNegativeAdvantages", func(t *testing.T) {
		q := p
		q.lp = p.lp.Clone()
		for i := range q.lp.Data {
			if i%3 == 0 {
				q.lp.Data[i] = q.old.Data[i] + 2 // ρ = e² ≈ 7.4 > c
			}
		}
		base := DefaultPolicyLossConfig()
		dual := base
		dual.DualClip = 3
		pos := q
		pos.adv = tensor.New(4, 5)
		for i, v := range q.adv.Data {
			pos.adv.Data[i] = float32(math.Abs(float64(v)))
		}
		lb, _, _ := pos.run(base, LossNorm{})
		ld, md, _ := pos.run(dual, LossNorm{})
		if lb != ld || md.DualClipFrac != 0 {
			t.Fatalf("Â ≥ 0: loss %v with dual clip, %v without (dual frac %v)", ld, lb, md.DualClipFrac)
		}
		lb, _, _ = q.run(base, LossNorm{})
		ld, md, gd := q.run(dual, LossNorm{})
		if !(ld < lb) || md.DualClipFrac == 0 {
			t.Fatalf("Â < 0 with ρ > c: dual-clip loss %v should be below %v (dual frac %v)", ld, lb, md.DualClipFrac)
		}
		for i := range gd {
			if q.adv.Data[i] < 0 && math.Exp(float64(q.lp.Data[i]-q.old.Data[i])) > 3 && gd[i] != 0 && q.mask.Data[i] != 0 {
				t.Fatalf("token %d is held at the dual bound but has gradient %v", i, gd[i])
			}
		}
	})
	// The log-ratio is clamped to ±20 before exp, so ρ stays finite and a
	// ratio beyond the clamp has no gradient.
	t.Run("LogRatioClamp", func(t *testing.T) {
		q := p
		q.lp, q.adv = p.lp.Clone(), p.adv.Clone()
		q.lp.Data[0], q.adv.Data[0] = q.old.Data[0]+25, -1
		l25, m, g := q.run(DefaultPolicyLossConfig(), LossNorm{})
		q.lp.Data[0] = q.old.Data[0] + 20
		l20, _, _ := q.run(DefaultPolicyLossConfig(), LossNorm{})
		if math.IsInf(float64(l25), 0) || math.Abs(float64(l25-l20)) > 1e-6*math.Abs(float64(l20)) || g[0] != 0 {
			t.Fatalf("log ratio 25: loss %v (20: %v), grad %v", l25, l20, g[0])
		}
		if want := math.Exp(20); math.Abs(m.RatioMax-want) > 1e-5*want {
			t.Fatalf("ratio max %v, want e^20", m.RatioMax)
		}
	})
	// GSPO's ratio is one value per sequence: the geometric mean of its tokens' ratios.
	t.Run("GSPOSequenceRatio", func(t *testing.T) {
		cfg := policyConfigs()["gspo"]
		_, m, _ := p.run(cfg, LossNorm{})
		var want []float64
		for b := range 4 {
			var s, n float64
			for i := range 5 {
				s += float64((p.lp.Data[b*5+i] - p.old.Data[b*5+i]) * p.mask.Data[b*5+i])
				n += float64(p.mask.Data[b*5+i])
			}
			if n > 0 {
				want = append(want, math.Exp(s/n))
			}
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, w := range want {
			lo, hi = math.Min(lo, w), math.Max(hi, w)
		}
		if math.Abs(m.RatioMin-lo) > 1e-6 || math.Abs(m.RatioMax-hi) > 1e-6 {
			t.Fatalf("ratio range [%v, %v], want [%v, %v]", m.RatioMin, m.RatioMax, lo, hi)
		}
	})
	t.Run("OnPolicyMetrics", func(t *testing.T) {
		q := p
		q.lp = p.old
		_, m, _ := q.run(DefaultPolicyLossConfig(), LossNorm{})
		if m.ClipFrac != 0 || m.ApproxKL != 0 || m.RatioMin != 1 || m.RatioMax != 1 {
			t.Fatalf("π = π_old gave %+v", m)
		}
	})
}

// Splitting a step into micro-batches with the step's LossNorm gives losses
// and gradients that add up to the whole batch's (OpenRLHF's invariance
// test, without its DeepSpeed factors).
func TestAggregate_MicroBatchInvariance(t *testing.T) {
	p := newPolicyBatch()
	rows := func(x *tensor.Tensor, lo, hi int) *tensor.Tensor {
		return tensor.FromSlice(append([]float32(nil), x.Data[lo*5:hi*5]...), hi-lo, 5)
	}
	for name, cfg := range policyConfigs() {
		t.Run(name, func(t *testing.T) {
			whole, _, gWhole := p.run(cfg, LossNorm{})
			parts := [][2]int{{0, 1}, {1, 4}}
			var masks []*tensor.Tensor
			for _, r := range parts {
				masks = append(masks, rows(p.mask, r[0], r[1]))
			}
			norm := StepLossNorm(masks...)
			var sum float32
			var grad []float32
			for _, r := range parts {
				q := policyBatch{lp: rows(p.lp, r[0], r[1]), old: rows(p.old, r[0], r[1]), adv: rows(p.adv, r[0], r[1]), mask: rows(p.mask, r[0], r[1])}
				l, _, g := q.run(cfg, norm)
				sum += l
				grad = append(grad, g...)
			}
			if math.Abs(float64(sum-whole)) > 1e-6 {
				t.Fatalf("micro-batch losses add to %v, whole batch %v", sum, whole)
			}
			if e := tt.MaxRelErr(grad, gWhole, 1e-9); e > 1e-6 {
				t.Fatalf("gradients differ: max rel err %v", e)
			}
		})
	}
}

func TestAggregate(t *testing.T) {
	loss := tensor.FromSlice([]float32{1, 2, 0, 3, 4, 5, 7, 0, 0}, 3, 3)
	mask := tensor.FromSlice([]float32{1, 1, 0, 1, 1, 1, 1, 0, 0}, 3, 3)
	cases := []struct {
		agg  Aggregation
		norm LossNorm
		want float32
	}{
		{TokenMean, LossNorm{}, 22.0 / 6},
		{TokenMean, LossNorm{Tokens: 11}, 2},
		{SeqMeanTokenMean, LossNorm{}, (1.5 + 4 + 7) / 3},
		{SeqMeanTokenMean, LossNorm{Sequences: 5}, (1.5 + 4 + 7) / 5},
	}
	for _, c := range cases {
		if got := Aggregate(nil, loss, mask, c.agg, c.norm).Item(); math.Abs(float64(got-c.want)) > 1e-6 {
			t.Errorf("%s %+v: %v, want %v", c.agg, c.norm, got, c.want)
		}
	}
	empty := tensor.New(3, 3)
	for _, agg := range aggregations {
		if got := Aggregate(nil, loss, empty, agg, LossNorm{}).Item(); got != 0 {
			t.Errorf("%s of an empty mask: %v, want 0", agg, got)
		}
	}
	if n := StepLossNorm(mask, empty); n.Tokens != 6 || n.Sequences != 3 {
		t.Errorf("StepLossNorm = %+v, want 6 tokens, 3 sequences", n)
	}
}

func TestValueLoss(t *testing.T) {
	mask := rightPadMask(4, 4, 2, 0)
	old, ret := uniform(21, -1, 1, 3, 4), uniform(22, -1, 1, 3, 4)
	v0 := old.Clone()
	for i, d := range uniform(23, -0.6, 0.6, 3, 4).Data {
		v0.Data[i] += d
	}
	run := func(cfg ValueLossConfig, v *tensor.Tensor) (float32, ValueMetrics, []float32) {
		p := param(v)
		tp := tensor.NewTape()
		loss, m := ValueLoss(tp, cfg, p, old, ret, mask, LossNorm{})
		tp.Backward(loss)
		return loss.Item(), m, p.Grad
	}
	t.Run("GradCheck", func(t *testing.T) {
		for _, cfg := range []ValueLossConfig{DefaultValueLossConfig(), {Clip: 0.2, Aggregation: SeqMeanTokenMean}, {Aggregation: TokenMean}} {
			v := param(v0)
			f := func(tp *tensor.Tape) *tensor.Tensor {
				l, _ := ValueLoss(tp, cfg, v, old, ret, mask, LossNorm{})
				return l
			}
			if err := tt.GradCheck(f, []*tensor.Tensor{v}, 1e-3, 2e-2); err != nil {
				t.Fatalf("%+v: %v", cfg, err)
			}
		}
	})
	t.Run("NoClipIsHalfMSE", func(t *testing.T) {
		got, _, _ := run(ValueLossConfig{Aggregation: TokenMean}, v0)
		var s, n float64
		for i, m := range mask.Data {
			d := float64(v0.Data[i] - ret.Data[i])
			s += 0.5 * d * d * float64(m)
			n += float64(m)
		}
		if math.Abs(float64(got)-s/n) > 1e-6 {
			t.Fatalf("loss %v, ½·MSE %v", got, s/n)
		}
	})
	// Clipping can only raise the loss: it takes the max of the clipped and
	// unclipped terms (PPO's pessimistic bound).
	t.Run("ClipIsPessimistic", func(t *testing.T) {
		lc, m, _ := run(ValueLossConfig{Clip: 0.1, Aggregation: TokenMean}, v0)
		lu, _, _ := run(ValueLossConfig{Aggregation: TokenMean}, v0)
		if lc < lu || m.ClipFrac == 0 {
			t.Fatalf("clipped loss %v < unclipped %v, or clip fraction %v is 0", lc, lu, m.ClipFrac)
		}
	})
	t.Run("MaskedPositionsContributeNothing", func(t *testing.T) {
		l1, m1, g1 := run(DefaultValueLossConfig(), v0)
		l2, m2, g2 := run(DefaultValueLossConfig(), scribble(v0, mask))
		if l1 != l2 || m1 != m2 {
			t.Fatalf("loss %v → %v, metrics %+v → %+v", l1, l2, m1, m2)
		}
		for i, m := range mask.Data {
			if g1[i] != g2[i] || (m == 0 && g1[i] != 0) {
				t.Fatalf("grad[%d] %v → %v", i, g1[i], g2[i])
			}
		}
	})
}

func TestEntropyBonus(t *testing.T) {
	mask := rightPadMask(3, 3, 1)
	h := param(tensor.FromSlice([]float32{1, 2, 3, 4, 9, 9}, 2, 3))
	tp := tensor.NewTape()
	term, mean := EntropyBonus(tp, h, mask, 0.1, TokenMean, LossNorm{})
	tp.Backward(term)
	if math.Abs(mean-2.5) > 1e-6 || math.Abs(float64(term.Item())+0.25) > 1e-6 {
		t.Fatalf("term %v mean %v, want −0.25 and 2.5", term.Item(), mean)
	}
	// Raising entropy lowers the loss: the gradient is −coef/N on valid tokens.
	want := []float32{-0.025, -0.025, -0.025, -0.025, 0, 0}
	if e := tt.MaxRelErr(h.Grad, want, 1e-9); e > 1e-6 {
		t.Fatalf("grad %v, want %v", h.Grad, want)
	}
}
