package lora

import (
	"fmt"
	"strings"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
)

// IsAdapterPayload reports whether a weight payload holds adapters
// (lora_A/lora_B tensors) rather than a whole model.
func IsAdapterPayload(names []string) bool {
	for _, n := range names {
		if strings.HasSuffix(n, ".lora_A.weight") {
			return true
		}
	}
	return false
}

// Merged returns base's parameters with the adapters of payload merged
// in: a weight sync that carries only the adapters (Adapters.Params
// names, rank r = the A tensors' rows, output scale as given) becomes the
// full parameter list a rollout engine loads. Each adapted weight is a
// fresh tensor W + scale·B·A (transposed for fan_in_fan_out maps); every
// other parameter is base's own tensor, shared, or the payload's tensor
// of that name (a module saved whole). base is only read, so its weights
// stay the base the next sync merges into.
func Merged(base model.CausalLM, payload nn.Params, scale float32) (nn.Params, error) {
	targets, err := Select(base, []string{AllLinear})
	if err != nil {
		return nil, err
	}
	byWeight := make(map[string]nn.LoRATarget, len(targets))
	for _, t := range targets {
		byWeight[t.Module+".weight"] = t
	}
	pay := make(map[string]nn.Param, len(payload))
	for _, p := range payload {
		pay[p.Name] = p
	}
	used := 0
	out := base.Params()
	for i, p := range out {
		if q, ok := pay[p.Name]; ok { // saved whole
			if len(q.Tensor.Data) != len(p.Tensor.Data) {
				return nil, fmt.Errorf("lora: sync: %s has shape %v, the base's %v", p.Name, q.Tensor.Shape, p.Tensor.Shape)
			}
			out[i].Tensor, used = q.Tensor, used+1
			continue
		}
		t, ok := byWeight[p.Name]
		if !ok {
			continue
		}
		mod := strings.TrimSuffix(p.Name, ".weight")
		a, okA := pay[mod+".lora_A.weight"]
		b, okB := pay[mod+".lora_B.weight"]
		if !okA && !okB {
			continue
		}
		in, o := t.InOut()
		if !okA || !okB || len(a.Tensor.Shape) != 2 || len(b.Tensor.Shape) != 2 || a.Tensor.Shape[1] != in ||
			b.Tensor.Shape[0] != o || a.Tensor.Shape[0] != b.Tensor.Shape[1] {
			return nil, fmt.Errorf("lora: sync: adapter of %s: lora_A %v and lora_B %v do not fit the base weight %v",
				mod, shapeOf(a), shapeOf(b), p.Tensor.Shape)
		}
		w := p.Tensor.Clone()
		(&nn.LoRA{A: a.Tensor, B: b.Tensor, Scale: scale}).DeltaInto(w.Data, t.FanInFanOut)
		out[i].Tensor, used = w, used+2
	}
	if used != len(payload) {
		for _, q := range payload {
			if base.Params().Find(q.Name) == nil && !strings.Contains(q.Name, ".lora_") {
				return nil, fmt.Errorf("lora: sync: %s is not a parameter of the base", q.Name)
			}
		}
		return nil, fmt.Errorf("lora: sync: %d of the payload's %d tensors adapt no map of the base", len(payload)-used, len(payload))
	}
	return out, nil
}

func shapeOf(p nn.Param) []int {
	if p.Tensor == nil {
		return nil
	}
	return p.Tensor.Shape
}
