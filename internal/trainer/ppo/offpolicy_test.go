package ppo

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/train"
)

func TestConfig_ISCorrection(t *testing.T) {
	c := tinyConfigFor(t, rl.EstimatorGroupNorm)
	ic := &c.Algo.ISCorrection
	if ic.Enable || ic.Type != rl.ISTIS || ic.Threshold != (rl.Range{Lo: 0.5, Hi: 5}) {
		t.Fatalf("default %+v, want OpenRLHF's: off, tis, 0.5,5", *ic)
	}
	ic.Enable = true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Train.EngineLogProbs = true
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--algo.advantage.is_correction_enable corrects") ||
		!strings.Contains(err.Error(), "--train.engine_logprobs") {
		t.Fatalf("got %v, want the engine_logprobs conflict named", err)
	}
	c.Train.EngineLogProbs = false
	ic.Threshold = rl.Range{Lo: 2, Hi: 1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ppo: --algo.advantage.is_correction_threshold: rl: IS correction threshold") {
		t.Fatalf("got %v, want the threshold flag named", err)
	}
	ic.Threshold, ic.Type = rl.Range{Lo: 0.5, Hi: 5}, "token"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ppo: --algo.advantage.is_correction_type: rl: unknown IS correction type") {
		t.Fatalf("got %v, want the type flag named", err)
	}
}

// staleTrainer is a trainer whose rollout engine never receives new
// weights (SyncWeights does nothing): from the second iteration on, the
// samples come from the initial policy, an off-policy rollout as stale as
// it gets.
func staleTrainer(t *testing.T, c Config, env train.Setup) *Trainer {
	t.Helper()
	p, err := inproc.Build(c.RoleSpec(), env, loadModel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	stale := func(context.Context, role.Actor, role.Rollout, int64) error { return nil }
	tr, err := New(context.Background(), c, p.Set, Runtime{Tok: env.Tok, SyncWeights: stale})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func steps(t *testing.T, tr *Trainer, n int) []map[string]float64 {
	t.Helper()
	var out []map[string]float64
	for range n {
		m, err := tr.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// The mismatch is logged on every run where the actor recomputes π_old:
// on policy it is float rounding only; with a stale rollout it is real,
// and the correction's weights reach the actor's loss.
func TestOffPolicy_Metrics(t *testing.T) {
	env := tinyEnv(t)
	t.Run("OnPolicy", func(t *testing.T) {
		c := tinyConfigFor(t, rl.EstimatorGroupNorm)
		tr, _ := newTrainer(t, c, env)
		for _, m := range steps(t, tr, 2) {
			finiteAll(t, m, "mismatch/kl", "mismatch/k3_kl", "mismatch/abs_diff", "mismatch/ratio_mean", "mismatch/ratio_min", "mismatch/ratio_max")
			if math.Abs(m["mismatch/kl"]) > 1e-5 || m["mismatch/abs_diff"] > 1e-4 || math.Abs(m["mismatch/ratio_mean"]-1) > 1e-4 {
				t.Fatalf("on-policy mismatch beyond float rounding: %v", m)
			}
			if _, ok := m["is_correction/weight_mean"]; ok {
				t.Fatal("is_correction/* logged without the correction")
			}
		}
	})
	t.Run("EngineLogProbs", func(t *testing.T) {
		c := tinyConfigFor(t, rl.EstimatorGroupNorm)
		c.Train.EngineLogProbs, c.Train.MaxIterations = true, 1
		tr, _ := newTrainer(t, c, env)
		if m := steps(t, tr, 1)[0]; m["mismatch/kl"] != 0 || m["mismatch/ratio_max"] != 0 {
			t.Fatalf("π_old is the engine's: nothing to compare, got %v", m)
		}
	})
	t.Run("Stale", func(t *testing.T) {
		c := tinyConfigFor(t, rl.EstimatorGroupNorm)
		c.Train.MaxIterations = 3
		ms := steps(t, staleTrainer(t, c, env), 3)
		t.Logf("stale rollout, iteration 3: mismatch k1 %.3g, k3 %.3g, ratio max %.3g", ms[2]["mismatch/kl"], ms[2]["mismatch/k3_kl"], ms[2]["mismatch/ratio_max"])
		if kl := ms[2]["mismatch/k3_kl"]; !(kl > 1e-4) {
			t.Fatalf("stale rollout: k3 KL %v, want a real mismatch", kl)
		}
		if ms[2]["weight_version"] != 3 {
			t.Fatalf("weight_version %v", ms[2]["weight_version"])
		}
	})
	t.Run("StaleTIS", func(t *testing.T) {
		c := tinyConfigFor(t, rl.EstimatorGroupNorm)
		c.Train.MaxIterations = 3
		c.Algo.ISCorrection.Enable = true
		c.Algo.ISCorrection.Threshold = rl.Range{Lo: 0.9, Hi: 1.1}
		ms := steps(t, staleTrainer(t, c, env), 3)
		m := ms[2]
		finiteAll(t, m, "is_correction/weight_mean", "is_correction/clipped_frac", "is_correction/clipped_seq_frac", "policy_loss")
		if !(m["is_correction/clipped_frac"] > 0) || m["is_correction/weight_mean"] < 0.9 || m["is_correction/weight_mean"] > 1.1 {
			t.Fatalf("tis [0.9, 1.1] on a stale rollout: %v", m)
		}
	})
	// icepop with a window no ratio reaches: every weight is 0, so the
	// policy loss and its gradient vanish (no KL or entropy term here).
	t.Run("StaleIcepopRejectsAll", func(t *testing.T) {
		c := tinyConfigFor(t, rl.EstimatorGroupNorm)
		c.Train.MaxIterations = 2
		c.Algo.ISCorrection = rl.ISCorrectionConfig{Enable: true, Type: rl.ISIcepop, Threshold: rl.Range{Lo: 1e6, Hi: 1e7}}
		for _, m := range steps(t, staleTrainer(t, c, env), 2) {
			if m["is_correction/masked_frac"] != 1 || m["is_correction/masked_seq_frac"] != 1 || m["policy_loss"] != 0 || m["actor_grad_norm"] != 0 {
				t.Fatalf("every token rejected: want masked 1, loss 0, grad 0; got %v", m)
			}
		}
	})
	// GSPO takes its ratio against the engine's log-probs (OpenRLHF) and
	// makes no weights.
	t.Run("GSPO", func(t *testing.T) {
		c := tinyConfigFor(t, rl.EstimatorGroupNorm)
		c.Train.MaxIterations = 1
		c.Actor.PolicyLoss.Type = rl.PolicyGSPO
		c.Algo.ISCorrection.Enable = true
		m := steps(t, staleTrainer(t, c, env), 1)[0]
		finiteAll(t, m, "policy_loss", "mismatch/kl")
		if _, ok := m["is_correction/weight_mean"]; ok {
			t.Fatal("gspo: no weights expected")
		}
	})
}
