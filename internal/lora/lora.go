// Package lora trains a model through low-rank adapters (LoRA, Hu et al.
// 2021) the way OpenRLHF does through PEFT: Attach puts an adapter on
// every linear map of the transformer blocks that --ds.lora.target_modules
// names and freezes the base model, so that only the adapters (and the
// modules to save whole, such as a reward model's score head) get
// gradients and optimizer state. Adapters are saved, read and merged in
// PEFT's format (adapter_config.json + adapter_model.safetensors, see
// peft.go), so PEFT loads what gorlhf trains and gorlhf merges what PEFT
// trained.
package lora

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// AllLinear is the target_modules value that adapts every linear map of
// the transformer blocks (PEFT's "all-linear": not the LM head).
const AllLinear = "all-linear"

// Config is OpenRLHF's --ds.lora.* group. Rank 0 turns LoRA off.
type Config struct {
	// Rank is r, the adapters' inner width (--ds.lora.rank); 0 = full
	// fine-tuning.
	Rank int `flag:"rank"`
	// Alpha scales the adapters' output by Alpha/Rank (--ds.lora.alpha).
	Alpha float64 `flag:"alpha"`
	// Dropout is the dropout on the adapters' input in training
	// (--ds.lora.dropout).
	Dropout float64 `flag:"dropout"`
	// TargetModules names the adapted maps by their module names,
	// comma- or space-separated ("q_proj,v_proj"; GPT-2: "c_attn,c_proj,
	// c_fc"), or "all-linear" (--ds.lora.target_modules).
	TargetModules string `flag:"target_modules"`
}

// DefaultConfig is OpenRLHF's: off (rank 0), α 16, no dropout, every
// linear map.
func DefaultConfig() Config { return Config{Alpha: 16, TargetModules: AllLinear} }

// Enabled reports whether LoRA is on (Rank > 0).
func (c Config) Enabled() bool { return c.Rank > 0 }

// Validate checks the settings; prefix is the flag group ("ds.lora").
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Rank < 0 {
		errs = append(errs, fmt.Errorf("lora: --%s.rank must be ≥ 0 (0 = off), got %d", prefix, c.Rank))
	}
	if c.Enabled() {
		if !(c.Alpha > 0) || math.IsInf(c.Alpha, 0) {
			errs = append(errs, fmt.Errorf("lora: --%s.alpha must be a finite number > 0, got %g", prefix, c.Alpha))
		}
		if !(c.Dropout >= 0 && c.Dropout < 1) {
			errs = append(errs, fmt.Errorf("lora: --%s.dropout must be in [0, 1), got %g", prefix, c.Dropout))
		}
		if len(c.Modules()) == 0 {
			errs = append(errs, fmt.Errorf("lora: --%s.target_modules names no module", prefix))
		}
	}
	return errors.Join(errs...)
}

// Modules returns the target module names (["all-linear"] for every map).
func (c Config) Modules() []string {
	return strings.FieldsFunc(c.TargetModules, func(r rune) bool { return r == ',' || r == ' ' || r == '[' || r == ']' || r == '"' || r == '\'' })
}

// Adapters are the adapters attached to one model.
type Adapters struct {
	Config Config
	// Targets are the adapted maps, each with its adapter in its Slot, in
	// the model's LoRATargets order.
	Targets []nn.LoRATarget
	// Saved are the base parameters trained whole (PEFT's
	// modules_to_save), e.g. a score model's "score.weight".
	Saved nn.Params
	// SavedModules are the module names of Saved ("score").
	SavedModules []string
	// TaskType is PEFT's task_type: "CAUSAL_LM", or "SEQ_CLS" for a
	// score model.
	TaskType string
}

// Attach puts a fresh adapter (A Kaiming-uniform, B zero: the model's
// output does not change) on every linear map of m that c.TargetModules
// names, and freezes every parameter of m (no gradient, no optimizer
// state) except those of the modules in save (module names, e.g. "score":
// its parameters "score.*" stay trainable). seed draws A and the dropout
// masks. A module name that matches no map is an error that lists the
// ones there are.
func Attach(m model.CausalLM, c Config, seed uint64, save ...string) (*Adapters, error) {
	if err := c.Validate("ds.lora"); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return nil, fmt.Errorf("lora: rank is 0: nothing to attach")
	}
	targets, err := Select(m, c.Modules())
	if err != nil {
		return nil, err
	}
	a := &Adapters{Config: c, SavedModules: save, TaskType: "CAUSAL_LM"}
	if len(save) > 0 {
		a.TaskType = "SEQ_CLS"
	}
	r := tensor.NewRand(seed)
	for _, t := range targets {
		if *t.Slot != nil {
			return nil, fmt.Errorf("lora: %s already has an adapter", t.Module)
		}
	}
	for _, p := range m.Params() {
		p.Tensor.RequiresGrad = inModules(p.Name, save)
		if !p.Tensor.RequiresGrad {
			p.Tensor.Grad = nil
		} else {
			a.Saved = append(a.Saved, p)
		}
	}
	for _, t := range targets {
		in, out := t.InOut()
		*t.Slot = nn.NewLoRA(in, out, c.Rank, float32(c.Alpha), float32(c.Dropout), r)
	}
	a.Targets = targets
	return a, nil
}

// Select returns the maps of m whose module name is in modules (or every
// one for "all-linear"), in LoRATargets order.
func Select(m model.CausalLM, modules []string) ([]nn.LoRATarget, error) {
	ad, ok := m.(model.Adaptable)
	if !ok {
		return nil, fmt.Errorf("lora: %T has no linear maps an adapter can attach to (model.Adaptable)", m)
	}
	all := ad.LoRATargets()
	every := slices.Contains(modules, AllLinear)
	var have []string
	for _, t := range all {
		if !slices.Contains(have, t.Short()) {
			have = append(have, t.Short())
		}
	}
	for _, name := range modules {
		if name != AllLinear && !slices.Contains(have, name) {
			return nil, fmt.Errorf("lora: target module %q is not in the model; its linear maps are %s (or %s)",
				name, strings.Join(have, ", "), AllLinear)
		}
	}
	var ts []nn.LoRATarget
	for _, t := range all {
		if every || slices.Contains(modules, t.Short()) {
			ts = append(ts, t)
		}
	}
	return ts, nil
}

// inModules reports whether the parameter name belongs to one of the
// modules (name is module+"."+…).
func inModules(name string, modules []string) bool {
	for _, m := range modules {
		if strings.HasPrefix(name, m+".") {
			return true
		}
	}
	return false
}

// Params lists what the optimizer trains, under PEFT's names without
// the "base_model.model." prefix: every adapter's lora_A and lora_B in
// target order, then the saved modules' parameters.
func (a *Adapters) Params() nn.Params {
	var ps nn.Params
	for _, t := range a.Targets {
		ps = append(ps, (*t.Slot).Params(t.Module+".")...)
	}
	return append(ps, a.Saved...)
}

// Modules returns the adapted module names (short, sorted, unique): the
// target_modules PEFT's config lists.
func (a *Adapters) Modules() []string {
	var ms []string
	for _, t := range a.Targets {
		ms = append(ms, t.Short())
	}
	slices.Sort(ms)
	return slices.Compact(ms)
}

// Merge adds every adapter into its base weight (W += (α/r)·B·A) and
// detaches it: the model computes what it computed with the adapters,
// now without them (up to rounding), and can be saved as a full model.
func (a *Adapters) Merge() {
	for _, t := range a.Targets {
		(*t.Slot).DeltaInto(t.Weight.Data, t.FanInFanOut)
		*t.Slot = nil
	}
}
