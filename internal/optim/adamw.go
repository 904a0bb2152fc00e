// Package optim holds the optimizer (AdamW), gradient-norm clipping and
// learning-rate schedules shared by every trainer.
package optim

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/par"
)

// Config holds AdamW's hyper-parameters (OpenRLHF's --actor.adam.* flags).
type Config struct {
	Beta1       float64 // first-moment decay; default 0.9
	Beta2       float64 // second-moment decay; default 0.95 (OpenRLHF's default)
	Eps         float64 `flag:"adam.eps"`          // denominator epsilon; default 1e-8
	WeightDecay float64 `flag:"adam.weight_decay"` // decoupled weight decay λ; default 0 (OpenRLHF's default); never applied to biases and norm weights
}

// DefaultConfig returns OpenRLHF's AdamW defaults.
func DefaultConfig() Config { return Config{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0} }

// Validate checks ranges.
func (c Config) Validate() error {
	var errs []error
	if !(c.Beta1 >= 0 && c.Beta1 < 1 && c.Beta2 >= 0 && c.Beta2 < 1) {
		errs = append(errs, fmt.Errorf("optim: betas must be in [0, 1), got (%g, %g)", c.Beta1, c.Beta2))
	}
	if !(c.Eps > 0) || math.IsInf(c.Eps, 0) {
		errs = append(errs, fmt.Errorf("optim: eps must be a finite number > 0, got %g", c.Eps))
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		errs = append(errs, fmt.Errorf("optim: weight decay must be ≥ 0, got %g", c.WeightDecay))
	}
	return errors.Join(errs...)
}

// NoDecay reports whether a parameter is exempt from weight decay: biases
// and normalisation weights, as OpenRLHF's grouped parameters (and most
// LLM recipes) do.
func NoDecay(name string) bool {
	if strings.HasSuffix(name, ".bias") {
		return true
	}
	for _, s := range []string{"norm.weight", "layernorm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter 2019,
// https://arxiv.org/abs/1711.05101), step for step as torch.optim.AdamW:
//
//	θ ← θ·(1 − lr·λ)
//	m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//	θ ← θ − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
type AdamW struct {
	cfg    Config
	params nn.Params
	m, v   [][]float32
	t      int
}

// New returns an AdamW over params (their order is the state order).
func New(params nn.Params, cfg Config) (*AdamW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := params.Validate(); err != nil {
		return nil, err
	}
	o := &AdamW{cfg: cfg, params: params, m: make([][]float32, len(params)), v: make([][]float32, len(params))}
	for i, p := range params {
		o.m[i] = make([]float32, p.Tensor.Numel())
		o.v[i] = make([]float32, p.Tensor.Numel())
	}
	return o, nil
}

// Steps returns how many updates were applied.
func (o *AdamW) Steps() int { return o.t }

// Step applies one update at learning rate lr using the parameters'
// current gradients (a nil gradient counts as zero).
func (o *AdamW) Step(lr float64) {
	o.t++
	k := o.cfg.Coeffs(lr, o.t)
	for i, p := range o.params {
		k.Decay = o.cfg.DecayFactor(p.Name, lr)
		Update(p.Tensor.Data, p.Tensor.Grad, o.m[i], o.v[i], k)
	}
}

// Coeffs are the scalars of one AdamW update, in float32 as the update
// uses them. A sharded optimizer (package zero) computes them once per
// step and applies Update to each parameter's slice it owns.
type Coeffs struct {
	B1, B2   float32 // β1, β2
	StepSize float32 // lr/(1−β1ᵗ)
	BC2Sqrt  float32 // √(1−β2ᵗ)
	Eps      float32 // ε
	Decay    float32 // 1 − lr·λ for a decayed parameter, 1 otherwise (DecayFactor)
}

// Coeffs returns the coefficients of update t (1-based: the first update
// is t = 1) at learning rate lr, with Decay 1 (set it per parameter with
// DecayFactor).
func (c Config) Coeffs(lr float64, t int) Coeffs {
	return Coeffs{
		B1: float32(c.Beta1), B2: float32(c.Beta2),
		StepSize: float32(lr / (1 - math.Pow(c.Beta1, float64(t)))),
		BC2Sqrt:  float32(math.Sqrt(1 - math.Pow(c.Beta2, float64(t)))),
		Eps:      float32(c.Eps),
		Decay:    1,
	}
}

// DecayFactor is the weight multiplier 1 − lr·λ of the parameter called
// name at learning rate lr: 1 when λ is 0 or the parameter is exempt
// (NoDecay).
func (c Config) DecayFactor(name string, lr float64) float32 {
	if c.WeightDecay != 0 && !NoDecay(name) {
		return float32(1 - lr*c.WeightDecay)
	}
	return 1
}

// Update applies one AdamW update element-wise to weights w with
// gradients g (nil counts as zero) and moments m, v, all of w's length:
//
//	m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//	w ← w·decay − stepSize · m / (√v/bc2Sqrt + ε)
//
// Each element depends on its own values alone, so updating a parameter
// in slices (shards) gives the same bits as updating it whole.
func Update(w, g, m, v []float32, k Coeffs) {
	if len(m) != len(w) || len(v) != len(w) || (g != nil && len(g) != len(w)) {
		panic(fmt.Sprintf("optim: Update: %d weights with %d gradients, %d and %d moments", len(w), len(g), len(m), len(v)))
	}
	par.For(len(w), 1<<14, func(lo, hi int) {
		var gs []float32
		if g != nil {
			gs = g[lo:hi]
		}
		w, m, v := w[lo:hi], m[lo:hi], v[lo:hi]
		updateScalar(w, gs, m, v, k, updateSIMD(w, gs, m, v, k))
	})
}

// updateScalar is Update's loop in pure Go from element from on; from 0 it
// is the twin updateSIMD is tested against.
func updateScalar(w, g, m, v []float32, k Coeffs, from int) {
	b1, b2, stepSize, bc2Sqrt, eps, decay := k.B1, k.B2, k.StepSize, k.BC2Sqrt, k.Eps, k.Decay
	for j := from; j < len(w); j++ {
		var gj float32
		if g != nil {
			gj = g[j]
		}
		m[j] = b1*m[j] + (1-b1)*gj
		v[j] = b2*v[j] + (1-b2)*gj*gj
		denom := float32(math.Sqrt(float64(v[j])))/bc2Sqrt + eps
		w[j] = w[j]*decay - stepSize*m[j]/denom
	}
}

// State is AdamW's resumable state, in parameter order.
type State struct {
	Step  int
	Names []string
	M, V  [][]float32
}

// State returns a copy of the moments and the step count.
func (o *AdamW) State() State {
	s := State{Step: o.t}
	for i, p := range o.params {
		s.Names = append(s.Names, p.Name)
		s.M = append(s.M, append([]float32(nil), o.m[i]...))
		s.V = append(s.V, append([]float32(nil), o.v[i]...))
	}
	return s
}

// LoadState restores State saved from an optimizer over the same parameters.
func (o *AdamW) LoadState(s State) error {
	if len(s.Names) != len(o.params) || len(s.M) != len(o.params) || len(s.V) != len(o.params) {
		return fmt.Errorf("optim: state has %d parameters, optimizer has %d", len(s.Names), len(o.params))
	}
	for i, p := range o.params {
		if s.Names[i] != p.Name || len(s.M[i]) != p.Tensor.Numel() || len(s.V[i]) != p.Tensor.Numel() {
			return fmt.Errorf("optim: state entry %d is %q (%d values), parameter is %q (%d)", i, s.Names[i], len(s.M[i]), p.Name, p.Tensor.Numel())
		}
	}
	for i := range o.params {
		copy(o.m[i], s.M[i])
		copy(o.v[i], s.V[i])
	}
	o.t = s.Step
	return nil
}

// GradNorm returns the global L2 norm of all gradients (float64 sum).
func GradNorm(params nn.Params) float64 {
	var s float64
	for _, p := range params {
		for _, g := range p.Tensor.Grad {
			s += float64(g) * float64(g)
		}
	}
	return math.Sqrt(s)
}

// ClipGradNorm scales all gradients by maxNorm/(norm+1e-6) when the global
// norm exceeds maxNorm (torch.nn.utils.clip_grad_norm_) and returns the norm
// before clipping. maxNorm ≤ 0 disables clipping.
func ClipGradNorm(params nn.Params, maxNorm float64) float64 {
	norm := GradNorm(params)
	if maxNorm <= 0 || norm <= maxNorm || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm
	}
	scale := float32(maxNorm / (norm + 1e-6))
	for _, p := range params {
		for j := range p.Tensor.Grad {
			p.Tensor.Grad[j] *= scale
		}
	}
	return norm
}
