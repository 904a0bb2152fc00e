package rl

import (
	"math"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

func enabledIS(typ ISCorrectionType, lo, hi float64) ISCorrectionConfig {
	return ISCorrectionConfig{Enable: true, Type: typ, Threshold: Range{Lo: lo, Hi: hi}}
}

// rolloutOf returns rollout log-probs that differ from old by up to ±spread.
func rolloutOf(old *tensor.Tensor, seed uint64, spread float32) *tensor.Tensor {
	r := old.Clone()
	d := uniform(seed, -spread, spread, old.Shape...)
	for i := range r.Data {
		r.Data[i] -= d.Data[i]
	}
	return r
}

// The weighted policy loss back-propagates the weights as constants: its
// tape gradient matches finite differences for every level and mode.
func TestISWeightedPolicyLoss_GradCheck(t *testing.T) {
	p := newPolicyBatch()
	roll := rolloutOf(p.old, 21, 1.2)
	for _, typ := range isCorrectionTypes {
		t.Run(string(typ), func(t *testing.T) {
			w, _ := ISWeights(enabledIS(typ, 0.6, 1.8), p.old, roll, p.mask)
			lp := param(p.lp)
			f := func(tp *tensor.Tape) *tensor.Tensor {
				loss, _ := PolicyLoss(tp, DefaultPolicyLossConfig(), lp, p.old, p.adv, w, p.mask, LossNorm{})
				return loss
			}
			if err := tt.GradCheck(f, []*tensor.Tensor{lp}, 1e-3, 2e-2); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Weights of exactly 1 change nothing, bit for bit (×1 is exact), and nil
// weights are the uncorrected loss.
func TestISWeights_OneIsIdentity(t *testing.T) {
	p := newPolicyBatch()
	for name, cfg := range policyConfigs() {
		t.Run(name, func(t *testing.T) {
			l0, m0, g0 := p.run(cfg, LossNorm{})
			ones := tensor.New(p.mask.Shape...)
			for i := range ones.Data {
				ones.Data[i] = 1
			}
			lp := param(p.lp)
			tp := tensor.NewTape()
			loss, m := PolicyLoss(tp, cfg, lp, p.old, p.adv, ones, p.mask, LossNorm{})
			tp.Backward(loss)
			if loss.Item() != l0 || m != m0 {
				t.Fatalf("loss %v metrics %+v, want %v %+v", loss.Item(), m, l0, m0)
			}
			for i := range g0 {
				if lp.Grad[i] != g0[i] {
					t.Fatalf("grad[%d] = %v, want %v", i, lp.Grad[i], g0[i])
				}
			}
		})
	}
	// π_old equal to the engine's: every ratio is 1, so every type gives w = 1.
	for _, typ := range isCorrectionTypes {
		w, st := ISWeights(enabledIS(typ, 0.5, 5), p.old, p.old, p.mask)
		for i, v := range w.Data {
			if want := p.mask.Data[i]; v != want {
				t.Fatalf("%s: w[%d] = %v, want %v", typ, i, v, want)
			}
		}
		if st != (ISStats{WeightMean: 1}) {
			t.Fatalf("%s: stats %+v", typ, st)
		}
	}
}

// Extreme ratios: +Inf is bounded to hi or rejected (never NaN); an
// underflowed sequence ratio is clipped to lo.
func TestISWeights_Extremes(t *testing.T) {
	mask := rightPadMask(3, 3, 2)
	old := tensor.New(2, 3)
	roll := tensor.New(2, 3)
	roll.Data[0] = -200 // ρ_t = e^200: finite in float64, beyond float32; row 0 seq ratio e^800 = +Inf
	roll.Data[1] = -600 // ρ_t = e^600 = +Inf
	roll.Data[3] = 600  // ρ_t = 0 (underflow), row 1 seq ratio 0
	cases := []struct {
		typ        ISCorrectionType
		row0, row1 []float32
	}{
		{ISTIS, []float32{5, 5, 1}, []float32{0.5, 1, 0}},
		{ISIcepop, []float32{0, 0, 1}, []float32{0, 1, 0}},
		{"token-trunc", []float32{5, 5, 1}, []float32{0, 1, 0}},
		{"seq-clip", []float32{5, 5, 5}, []float32{0.5, 0.5, 0}},
		{"seq-mask", []float32{0, 0, 0}, []float32{0, 0, 0}},
		{"geo-trunc", []float32{5, 5, 5}, []float32{0, 0, 0}},
	}
	for _, c := range cases {
		w, _ := ISWeights(enabledIS(c.typ, 0.5, 5), old, roll, mask)
		got := [][]float32{w.Data[0:3], w.Data[3:6]}
		for r, want := range [][]float32{c.row0, c.row1} {
			for j := range want {
				if math.IsNaN(float64(got[r][j])) || got[r][j] != want[j] {
					t.Errorf("%s: row %d = %v, want %v", c.typ, r, got[r], want)
					break
				}
			}
		}
	}
}

// An empty row and padding get weight 0 and do not count in the stats.
func TestISWeights_MaskedRows(t *testing.T) {
	p := newPolicyBatch() // row 3 is empty
	roll := rolloutOf(p.old, 5, 2)
	for _, typ := range isCorrectionTypes {
		w, st := ISWeights(enabledIS(typ, 0.7, 1.4), p.old, roll, p.mask)
		for i, m := range p.mask.Data {
			if m == 0 && w.Data[i] != 0 {
				t.Fatalf("%s: w[%d] = %v at a masked position", typ, i, w.Data[i])
			}
		}
		for _, f := range []float64{st.MaskedFrac, st.MaskedSeqFrac, st.ClippedFrac, st.ClippedSeqFrac} {
			if f < 0 || f > 1 {
				t.Fatalf("%s: stats %+v", typ, st)
			}
		}
	}
	empty := tensor.New(2, 3)
	w, st := ISWeights(enabledIS(ISSeqMaskTIS, 0.5, 5), empty, empty, empty)
	if st != (ISStats{}) || w.Data[0] != 0 {
		t.Fatalf("empty batch: %+v", st)
	}
	if m := LogProbMismatch(empty, empty, empty); m != (Mismatch{}) {
		t.Fatalf("empty mismatch: %+v", m)
	}
}

func TestISCorrectionConfig(t *testing.T) {
	d := DefaultISCorrectionConfig()
	if d.Enable || d.Type != ISTIS || d.Threshold != (Range{Lo: 0.5, Hi: 5}) {
		t.Fatalf("default %+v, want OpenRLHF's (off, tis, [0.5, 5])", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		typ  ISCorrectionType
		l    ISLevel
		mode ISMode
	}{{ISTIS, ISToken, ISClip}, {ISIcepop, ISToken, ISMask}, {ISSeqMaskTIS, ISGeo, ISMask}, {"seq-trunc", ISSeq, ISTrunc}} {
		if l, m := c.typ.Spec(); l != c.l || m != c.mode {
			t.Errorf("%s.Spec() = %s, %s", c.typ, l, m)
		}
	}
	if len(isCorrectionTypes) != 12 {
		t.Fatalf("%d types, want 3 presets + 9 level×mode", len(isCorrectionTypes))
	}
	var typ ISCorrectionType
	if err := typ.Set("geo-clip"); err != nil || typ != "geo-clip" {
		t.Fatal(err)
	}
	if err := typ.Set("tis-token"); err == nil || !strings.Contains(err.Error(), "seq-mask-tis") {
		t.Fatalf("bad type accepted or error without the valid names: %v", err)
	}
	for _, bad := range []Range{{Lo: 2, Hi: 1}, {Lo: -1, Hi: 5}, {Lo: 0, Hi: 0}, {Lo: 0.5, Hi: math.Inf(1)}, {Lo: math.NaN(), Hi: 5}} {
		c := enabledIS(ISTIS, bad.Lo, bad.Hi)
		if err := c.Validate(); err == nil {
			t.Errorf("threshold %v accepted", bad)
		}
		c.Enable = false // unused when off
		if err := c.Validate(); err != nil {
			t.Errorf("disabled, threshold %v: %v", bad, err)
		}
	}
	p := newPolicyBatch()
	old, w, st := d.PolicyInputs(PolicyPPO, p.old, p.lp, p.mask)
	if old != p.old || w != nil || st != (ISStats{}) {
		t.Fatal("disabled correction must pass π_old through with no weights")
	}
}
