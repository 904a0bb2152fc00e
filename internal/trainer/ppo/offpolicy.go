package ppo

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
)

// offPolicy is the off-policy side of one batch's experience: how far the
// rollout engine's log-probs are from the trainer's π_old, and what the
// actor's policy loss reads because of it (Config.Algo.ISCorrection).
type offPolicy struct {
	// ratioOld is what the actor's PPO ratio is taken against: π_old
	// (the experience's oldLP itself), or the engine's log-probs for GSPO
	// under the correction (rl.ISCorrectionConfig.PolicyInputs).
	ratioOld role.PerToken
	// weights are the per-token importance weights; nil without the
	// correction.
	weights role.PerToken
	stats   rl.ISStats
	// mismatch compares the engine's log-probs with the actor's π_old;
	// nil when π_old is the engine's own (--train.engine_logprobs).
	mismatch *rl.Mismatch
}

// offPolicy measures the log-prob mismatch of the batch (always, when the
// actor recomputed π_old) and makes the correction's weights (when
// enabled). It reads only oldLP, the engine's log-probs and the mask, so
// it changes nothing else of the experience: without the correction the
// actor trains exactly as before.
func (t *Trainer) offPolicy(r *rollout, e *experience) {
	e.off = offPolicy{ratioOld: e.oldLP}
	if t.cfg.Train.EngineLogProbs {
		return
	}
	a := r.seqs.Width()
	old, engine := e.oldLP.Pad(a), r.engineLP.Pad(a)
	mm := rl.LogProbMismatch(old, engine, e.mask)
	e.off.mismatch = &mm
	c := t.cfg.Algo.ISCorrection
	if !c.Enable {
		return
	}
	ratioOld, w, st := c.PolicyInputs(t.cfg.Actor.PolicyLoss.Type, old, engine, e.mask)
	if ratioOld == engine {
		e.off.ratioOld = r.engineLP
	}
	if w != nil {
		e.off.weights = role.Unpad(w, r.seqs.ResponseLens())
	}
	e.off.stats = st
}

// actorInputs fills the micro-batch's π_old and importance weights for
// the sequences idx.
func (o offPolicy) actorInputs(mb *role.ActorMicroBatch, idx []int) {
	mb.OldLogProbs = o.ratioOld.Select(idx)
	if o.weights != nil {
		mb.ISWeights = o.weights.Select(idx)
	}
}

// metrics adds the mismatch (mismatch/*) and, with the correction, what
// it did (is_correction/*).
func (o offPolicy) metrics(m map[string]float64, c rl.ISCorrectionConfig) {
	if mm := o.mismatch; mm != nil {
		m["mismatch/kl"], m["mismatch/k3_kl"], m["mismatch/abs_diff"] = mm.KL, mm.K3KL, mm.AbsDiff
		m["mismatch/ratio_mean"], m["mismatch/ratio_min"], m["mismatch/ratio_max"] = mm.RatioMean, mm.RatioMin, mm.RatioMax
	}
	if o.weights == nil {
		return
	}
	s := o.stats
	m["is_correction/weight_mean"] = s.WeightMean
	switch _, mode := c.Type.Spec(); mode {
	case rl.ISMask:
		m["is_correction/masked_frac"], m["is_correction/masked_seq_frac"] = s.MaskedFrac, s.MaskedSeqFrac
	default:
		m["is_correction/clipped_frac"], m["is_correction/clipped_seq_frac"] = s.ClippedFrac, s.ClippedSeqFrac
	}
}

// validateISCorrection checks the correction, naming the flag at fault,
// and refuses it where it would do nothing: with --train.engine_logprobs
// π_old is the engine's.
func (c Config) validateISCorrection() error {
	ic := &c.Algo.ISCorrection
	typeOnly := *ic
	typeOnly.Enable = false // Validate reads the threshold only when enabled
	var errs []error
	if err := typeOnly.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ppo: %s: %w", c.flag(&ic.Type), err))
	} else if err := ic.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ppo: %s: %w", c.flag(&ic.Threshold), err))
	}
	if ic.Enable && c.Train.EngineLogProbs {
		errs = append(errs, fmt.Errorf("ppo: %s corrects the actor's π_old towards the rollout engine's log-probs, but %s makes π_old the engine's own (every weight would be 1): drop one",
			c.flag(&ic.Enable), c.flag(&c.Train.EngineLogProbs)))
	}
	return errors.Join(errs...)
}
