package inproc

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/nn"
)

// Clone returns a deep copy of m: a model of the same architecture and
// configuration with its own copy of every weight (tied weights stay
// tied). It is how one loaded model becomes the frozen reference, the
// trained actor and the rollout engine's copy without reading the files
// three times.
func Clone(m model.CausalLM) (model.CausalLM, error) {
	var out model.CausalLM
	switch x := m.(type) {
	case *llama.Model:
		c, err := llama.New(x.Config)
		if err != nil {
			return nil, err
		}
		out = c
	case *gpt2.Model:
		c, err := gpt2.New(x.Config)
		if err != nil {
			return nil, err
		}
		out = c
	case *head.ScoreModel:
		bb, err := Clone(x.Backbone)
		if err != nil {
			return nil, err
		}
		sm := head.NewScoreModel(bb, x.Head.Weight.Shape[1])
		sm.Norm = x.Norm
		out = sm
	default:
		return nil, fmt.Errorf("inproc: cannot clone a %T (only Llama-family, GPT-2 and score models)", m)
	}
	if err := copyInto(out.Params(), m.Params()); err != nil {
		return nil, err
	}
	return out, nil
}

// copyInto copies src's values into dst, parameter by parameter by name.
func copyInto(dst, src nn.Params) error {
	if len(dst) != len(src) {
		return fmt.Errorf("inproc: clone has %d parameters, the model %d", len(dst), len(src))
	}
	for _, p := range dst {
		s := src.Find(p.Name)
		if s == nil || len(s.Data) != len(p.Tensor.Data) {
			return fmt.Errorf("inproc: clone: parameter %s does not match", p.Name)
		}
		copy(p.Tensor.Data, s.Data)
	}
	return nil
}
