package rl

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// tisGolden is testdata/tis_golden.json (regenerate it with
// /usr/bin/python3 tools/tis_golden.py).
type tisGolden struct {
	B, A     int
	Inputs   map[string][]float32
	Mismatch struct {
		KL        float64 `json:"kl"`
		K3KL      float64 `json:"k3_kl"`
		AbsDiff   float64 `json:"abs_diff"`
		RatioMean float64 `json:"ratio_mean"`
		RatioMin  float64 `json:"ratio_min"`
		RatioMax  float64 `json:"ratio_max"`
		Tokens    float64
	}
	Cases []struct {
		Name          string
		Type          ISCorrectionType
		Threshold     []float64
		DualClip      float64 `json:"dual_clip"`
		Aggregation   Aggregation
		NormTokens    float64 `json:"norm_tokens"`
		NormSequences float64 `json:"norm_sequences"`
		Weights       []float32
		Stats         struct {
			WeightMean     float64 `json:"weight_mean"`
			MaskedFrac     float64 `json:"masked_frac"`
			MaskedSeqFrac  float64 `json:"masked_seq_frac"`
			ClippedFrac    float64 `json:"clipped_frac"`
			ClippedSeqFrac float64 `json:"clipped_seq_frac"`
		}
		Loss      float64
		ClipRatio float64 `json:"clip_ratio"`
		Grad      []float32
	}
	GSPO struct {
		ClipLow  float64 `json:"clip_low"`
		ClipHigh float64 `json:"clip_high"`
		Loss     float64
		Grad     []float32
	} `json:"gspo"`
}

// nearLoss compares a corrected loss with the golden value. The float32
// tape sums terms as large as w_t·|Â_t| (weights up to hi), so its rounding
// is relative to their mean magnitude, not to the (possibly cancelling)
// sum: the bar is goldenTol × max(|want|, mean_t w_t·|Â_t|).
func nearLoss(t *testing.T, got, want float64, w, adv, mask *tensor.Tensor) {
	t.Helper()
	var s, n float64
	for i, m := range mask.Data {
		if m != 0 {
			s += math.Abs(float64(w.Data[i]) * float64(adv.Data[i]))
			n++
		}
	}
	scale := math.Max(math.Abs(want), s/math.Max(n, 1))
	if e := math.Abs(got-want) / scale; e > goldenTol {
		t.Errorf("loss = %.9g, want %.9g (error %.3g of the term scale %.3g)", got, want, e, scale)
	}
}

func loadTISGolden(t *testing.T) *tisGolden {
	t.Helper()
	raw, err := os.ReadFile("testdata/tis_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g tisGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

func (g *tisGolden) ba(name string) *tensor.Tensor {
	v, ok := g.Inputs[name]
	if !ok {
		panic("tis golden: no input " + name)
	}
	x := tensor.New(g.B, g.A)
	copy(x.Data, v)
	return x
}

// TestGolden_ISCorrection compares the weights, their stats, the corrected
// policy loss and its gradient with tools/tis_golden.py for every
// correction type (OpenRLHF's three presets and the level × mode grid).
func TestGolden_ISCorrection(t *testing.T) {
	g := loadTISGolden(t)
	mask, old, roll := g.ba("mask"), g.ba("old_log_probs"), g.ba("rollout_log_probs")
	if len(g.Cases) < 12 {
		t.Fatalf("golden has %d cases, want every type", len(g.Cases))
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			cfg := ISCorrectionConfig{Enable: true, Type: c.Type, Threshold: Range{Lo: c.Threshold[0], Hi: c.Threshold[1]}}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			ratioOld, w, st := cfg.PolicyInputs(PolicyPPO, old, roll, mask)
			if ratioOld != old {
				t.Fatal("ppo: the ratio must be taken against π_old")
			}
			near(t, "weights", w.Data, c.Weights)
			nearScalar(t, "weight mean", st.WeightMean, c.Stats.WeightMean)
			nearScalar(t, "masked frac", st.MaskedFrac, c.Stats.MaskedFrac)
			nearScalar(t, "masked seq frac", st.MaskedSeqFrac, c.Stats.MaskedSeqFrac)
			nearScalar(t, "clipped frac", st.ClippedFrac, c.Stats.ClippedFrac)
			nearScalar(t, "clipped seq frac", st.ClippedSeqFrac, c.Stats.ClippedSeqFrac)

			pc := PolicyLossConfig{Type: PolicyPPO, ClipLow: 0.2, ClipHigh: 0.28, DualClip: c.DualClip, Aggregation: c.Aggregation}
			lp := g.ba("log_probs")
			lp.RequiresGrad = true
			tp := tensor.NewTape()
			loss, m := PolicyLoss(tp, pc, lp, ratioOld, g.ba("advantages"), w, mask,
				LossNorm{Tokens: c.NormTokens, Sequences: c.NormSequences})
			tp.Backward(loss)
			nearLoss(t, float64(loss.Item()), c.Loss, w, g.ba("advantages"), mask)
			nearScalar(t, "clip fraction", m.ClipFrac, c.ClipRatio)
			near(t, "grad", lp.Grad, c.Grad)
		})
	}
	t.Run("GSPO", func(t *testing.T) {
		cfg := DefaultISCorrectionConfig()
		cfg.Enable = true
		ratioOld, w, _ := cfg.PolicyInputs(PolicyGSPO, old, roll, mask)
		if ratioOld != roll || w != nil {
			t.Fatal("gspo: want the rollout log-probs as π_old and no weights")
		}
		lp := g.ba("log_probs")
		lp.RequiresGrad = true
		tp := tensor.NewTape()
		pc := PolicyLossConfig{Type: PolicyGSPO, ClipLow: g.GSPO.ClipLow, ClipHigh: g.GSPO.ClipHigh, Aggregation: TokenMean}
		loss, _ := PolicyLoss(tp, pc, lp, ratioOld, g.ba("advantages"), w, mask, LossNorm{})
		tp.Backward(loss)
		nearScalar(t, "loss", float64(loss.Item()), g.GSPO.Loss)
		near(t, "grad", lp.Grad, g.GSPO.Grad)
	})
	t.Run("Mismatch", func(t *testing.T) {
		m := LogProbMismatch(old, roll, mask)
		w := g.Mismatch
		nearScalar(t, "kl", m.KL, w.KL)
		nearScalar(t, "k3 kl", m.K3KL, w.K3KL)
		nearScalar(t, "abs diff", m.AbsDiff, w.AbsDiff)
		nearScalar(t, "ratio mean", m.RatioMean, w.RatioMean)
		nearScalar(t, "ratio min", m.RatioMin, w.RatioMin)
		nearScalar(t, "ratio max", m.RatioMax, w.RatioMax)
		if m.Tokens != w.Tokens {
			t.Fatalf("tokens = %v, want %v", m.Tokens, w.Tokens)
		}
	})
}
