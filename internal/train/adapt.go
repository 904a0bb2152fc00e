package train

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
)

// Adapt returns what a trainer's optimizer updates on m: every parameter
// (and no adapters) when LoRA is off; with --ds.lora.rank > 0 it attaches
// the adapters (seeded by --train.seed), freezes the rest of m except the
// modules in save (a score model's "score") and returns the adapters'
// parameters with those. Put the adapters into the Model the session
// saves, so the final model and checkpoints hold them.
func (c Config) Adapt(m model.CausalLM, save ...string) (nn.Params, *lora.Adapters, error) {
	if !c.LoRA.Enabled() {
		return m.Params(), nil, nil
	}
	a, err := lora.Attach(m, c.LoRA, c.Seed, save...)
	if err != nil {
		return nil, nil, fmt.Errorf("train: %w", err)
	}
	return a.Params(), a, nil
}
