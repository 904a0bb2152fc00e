package head

import (
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// lmHeadName is the separate LM head a *ForSequenceClassification model
// does not have.
const lmHeadName = "lm_head.weight"

// Norm is the reward normalisation OpenRLHF stores in a reward model's
// config.json ("normalize_reward", "mean", "std"): at evaluation, when
// Normalize is set, rewards are reported as (r − Mean) / Std.
type Norm struct {
	Normalize bool
	Mean, Std float64
}

// DefaultNorm is the identity normalisation, switched off.
func DefaultNorm() Norm { return Norm{Mean: 0, Std: 1} }

// Apply normalises rewards in place when n.Normalize is set.
func (n Norm) Apply(r []float32) {
	if !n.Normalize {
		return
	}
	std := n.Std
	if std == 0 || math.IsNaN(std) {
		std = 1
	}
	for i, v := range r {
		r[i] = float32((float64(v) - n.Mean) / std)
	}
}

// ScoreModel is a causal LM backbone with a scalar head on its final hidden
// states: a reward model or a critic, laid out as Hugging Face's
// *ForSequenceClassification (backbone parameters under their usual names,
// "model.layers…" or "transformer.h…", plus "score.weight").
//
// It satisfies model.CausalLM so that loading, saving, optimizers and
// checkpoints treat it like any model; Forward returns the backbone's
// logits, which only mean something when the backbone still has a trained
// LM head (a critic initialised from a policy).
type ScoreModel struct {
	Backbone model.CausalLM
	Head     *Head
	Norm     Norm
}

// NewScoreModel puts a zero head of width c on backbone.
func NewScoreModel(backbone model.CausalLM, c int) *ScoreModel {
	return &ScoreModel{Backbone: backbone, Head: New(c), Norm: DefaultNorm()}
}

// Params lists the backbone's parameters, except a separate LM head (HF's
// *ForSequenceClassification has none), then "score.weight".
func (s *ScoreModel) Params() nn.Params {
	var ps nn.Params
	for _, p := range s.Backbone.Params() {
		if p.Name != lmHeadName {
			ps = append(ps, p)
		}
	}
	return append(ps, s.Head.Params()...)
}

// Dims returns the backbone's sizes.
func (s *ScoreModel) Dims() model.Dims { return s.Backbone.Dims() }

// Spec returns the score model's spec: the backbone's (as a score
// backbone, see model.Spec), the head width and the normalisation.
func (s *ScoreModel) Spec() model.Spec {
	return Spec{Backbone: s.Backbone.Spec().ScoreBackbone(), Width: s.Head.Weight.Shape[1], Norm: s.Norm}
}

// Spec describes a score model: its backbone, head width and reward
// normalisation.
type Spec struct {
	Backbone model.Spec
	Width    int // C
	Norm     Norm
}

// New implements model.Spec: the backbone with a zero head.
func (sp Spec) New() (model.CausalLM, error) {
	bb, err := sp.Backbone.New()
	if err != nil {
		return nil, err
	}
	s := NewScoreModel(bb, sp.Width)
	s.Norm = sp.Norm
	return s, nil
}

// ScoreBackbone implements model.Spec (a score model has no LM head).
func (sp Spec) ScoreBackbone() model.Spec { return sp }

// Hidden returns the backbone's final hidden states [B, T, C].
func (s *ScoreModel) Hidden(tp *tensor.Tape, ids, pos, seg []int32, b, t int) *tensor.Tensor {
	return s.Backbone.Hidden(tp, ids, pos, seg, b, t)
}

// Forward returns the backbone's logits [B, T, V] (see the type comment).
func (s *ScoreModel) Forward(tp *tensor.Tape, ids, pos, seg []int32, b, t int) *tensor.Tensor {
	return s.Backbone.Forward(tp, ids, pos, seg, b, t)
}

// Values returns the head's value at every token, [B, T]: a critic's
// per-token values (not normalised).
func (s *ScoreModel) Values(tp *tensor.Tape, ids, pos, seg []int32, b, t int) *tensor.Tensor {
	return s.Head.Values(tp, s.Backbone.Hidden(tp, ids, pos, seg, b, t))
}

// Rewards returns the value at token last[i] of each row, [B]: a reward
// model's scores (not normalised; see Norm.Apply). Use LastNonPad or
// LastValid for last.
func (s *ScoreModel) Rewards(tp *tensor.Tape, ids, pos, seg []int32, b, t int, last []int) *tensor.Tensor {
	return Pick(tp, s.Values(tp, ids, pos, seg, b, t), last)
}

var _ model.CausalLM = (*ScoreModel)(nil)

// SetBlockRunner implements model.Blocked through the backbone (every
// architecture of this module is model.Blocked; a registered one that is
// not panics here, a programmer error).
func (s *ScoreModel) SetBlockRunner(r model.BlockRunner) { s.blocked().SetBlockRunner(r) }

// BlockParams implements model.Blocked through the backbone.
func (s *ScoreModel) BlockParams(layer int) nn.Params { return s.blocked().BlockParams(layer) }

// LoRATargets implements model.Adaptable through the backbone (nil for
// a backbone that is not adaptable).
func (s *ScoreModel) LoRATargets() []nn.LoRATarget {
	if a, ok := s.Backbone.(model.Adaptable); ok {
		return a.LoRATargets()
	}
	return nil
}

func (s *ScoreModel) blocked() model.Blocked {
	b, ok := s.Backbone.(model.Blocked)
	if !ok {
		panic(fmt.Sprintf("head: backbone %T does not implement model.Blocked", s.Backbone))
	}
	return b
}
