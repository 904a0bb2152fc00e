package optim

import (
	"math"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/modeltest"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

type adamGolden struct {
	Beta1, Beta2, Eps float64
	WeightDecay       float64 `json:"weight_decay"`
	Init              map[string][]float32
	Steps             []struct {
		LR    float64
		Grads map[string][]float32
		After map[string][]float32
	}
}

// TestAdamW_Golden replays four torch.optim.AdamW steps (weight decay on
// "a.weight", none on the bias, changing learning rates) and compares the
// parameters after each step.
func TestAdamW_Golden(t *testing.T) {
	var g adamGolden
	modeltest.Load(t, "adamw", &g)
	a, b := tensor.FromSlice(g.Init["a.weight"], 5, 7), tensor.FromSlice(g.Init["b.bias"], 7)
	ps := nn.Params{{Name: "a.weight", Tensor: a}, {Name: "b.bias", Tensor: b}}
	o, err := New(ps, Config{Beta1: g.Beta1, Beta2: g.Beta2, Eps: g.Eps, WeightDecay: g.WeightDecay})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range g.Steps {
		a.Grad, b.Grad = s.Grads["a.weight"], s.Grads["b.bias"]
		o.Step(s.LR)
		for _, p := range ps {
			if e := tt.MaxRelErr(p.Tensor.Data, s.After[p.Name], 1e-6); e > 1e-6 {
				t.Fatalf("step %d %s: max relative error %.3g", i+1, p.Name, e)
			}
		}
	}
}

func TestAdamW_StateRoundTrip(t *testing.T) {
	mk := func() (nn.Params, *AdamW) {
		w := tensor.FromSlice([]float32{1, 2, 3}, 3)
		ps := nn.Params{{Name: "w", Tensor: w}}
		o, _ := New(ps, DefaultConfig())
		return ps, o
	}
	ps1, o1 := mk()
	ps2, o2 := mk()
	for i := 0; i < 3; i++ {
		ps1[0].Tensor.Grad = []float32{0.1, -0.2, float32(i)}
		o1.Step(0.1)
	}
	copy(ps2[0].Tensor.Data, ps1[0].Tensor.Data)
	if err := o2.LoadState(o1.State()); err != nil {
		t.Fatal(err)
	}
	for _, ps := range []nn.Params{ps1, ps2} {
		ps[0].Tensor.Grad = []float32{1, 1, 1}
	}
	o1.Step(0.1)
	o2.Step(0.1)
	for i := range ps1[0].Tensor.Data {
		if ps1[0].Tensor.Data[i] != ps2[0].Tensor.Data[i] {
			t.Fatalf("resumed optimizer differs at %d", i)
		}
	}
	bad := o1.State()
	bad.Names[0] = "other"
	if err := o2.LoadState(bad); err == nil {
		t.Fatal("state for another parameter was accepted")
	}
}

func TestClipGradNorm(t *testing.T) {
	w := tensor.New(2)
	w.Grad = []float32{3, 4}
	ps := nn.Params{{Name: "w", Tensor: w}}
	if n := ClipGradNorm(ps, 1); math.Abs(n-5) > 1e-6 {
		t.Fatalf("norm %v, want 5", n)
	}
	if n := GradNorm(ps); math.Abs(n-1) > 1e-5 {
		t.Fatalf("norm after clipping %v, want 1", n)
	}
	if n := ClipGradNorm(ps, 10); math.Abs(n-1) > 1e-5 || math.Abs(GradNorm(ps)-1) > 1e-5 {
		t.Fatal("clipping below the threshold changed the gradients")
	}
}

func TestSchedule_LR(t *testing.T) {
	s := Schedule{Kind: CosineWithMinLR, PeakLR: 1, WarmupSteps: 10, TotalSteps: 110, MinLRRatio: 0.1}
	cases := []struct {
		step int
		want float64
	}{{0, 0}, {5, 0.5}, {10, 1}, {60, 0.55}, {110, 0.1}, {500, 0.1}}
	for _, c := range cases {
		if got := s.LR(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("LR(%d) = %v, want %v", c.step, got, c.want)
		}
	}
	if got := (Schedule{Kind: Constant, PeakLR: 0.3}).LR(1000); got != 0.3 {
		t.Errorf("constant LR = %v", got)
	}
	var k ScheduleKind
	if err := k.Set("linear"); err == nil {
		t.Error("unknown schedule accepted")
	}
}

func TestNoDecay(t *testing.T) {
	for name, want := range map[string]bool{
		"model.layers.0.self_attn.q_proj.weight": false, "model.layers.0.self_attn.q_proj.bias": true,
		"model.norm.weight": true, "model.layers.3.input_layernorm.weight": true, "transformer.ln_f.weight": true,
		"transformer.h.0.ln_1.weight": true, "transformer.wte.weight": false,
	} {
		if NoDecay(name) != want {
			t.Errorf("NoDecay(%q) = %v", name, !want)
		}
	}
}

// TestUpdate_Slices checks that AdamW.Step, a plain element loop (the
// reference twin, written out as torch's formula in float32) and Update
// applied to arbitrary slices of each parameter (as a sharded optimizer
// does) give the same bits, weight decay on one parameter and not the
// other, a nil gradient counting as zero.
func TestUpdate_Slices(t *testing.T) {
	cfg := Config{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	r := tensor.NewRand(7)
	mk := func() nn.Params {
		r := tensor.NewRand(3)
		return nn.Params{{Name: "a.weight", Tensor: tensor.Randn(r, 1, 40000)}, {Name: "b.bias", Tensor: tensor.Randn(r, 1, 13)}}
	}
	whole, sliced, ref := mk(), mk(), mk()
	o, err := New(whole, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mom := func() [][]float32 { return [][]float32{make([]float32, 40000), make([]float32, 13)} }
	sm, sv, rm, rv := mom(), mom(), mom(), mom()
	for step := 1; step <= 3; step++ {
		lr := 0.01 * float64(step)
		grads := [][]float32{tensor.Randn(r, 1, 40000).Data, tensor.Randn(r, 1, 13).Data}
		if step == 2 {
			grads[1] = nil
		}
		for i := range whole {
			whole[i].Tensor.Grad = grads[i]
		}
		o.Step(lr)
		k := cfg.Coeffs(lr, step)
		for i, p := range sliced {
			k.Decay = cfg.DecayFactor(p.Name, lr)
			w, g := p.Tensor.Data, grads[i]
			for lo := 0; lo < len(w); {
				hi := min(len(w), lo+1+r.IntN(20000))
				var gs []float32
				if g != nil {
					gs = g[lo:hi]
				}
				Update(w[lo:hi], gs, sm[i][lo:hi], sv[i][lo:hi], k)
				lo = hi
			}
		}
		b1, b2 := float32(cfg.Beta1), float32(cfg.Beta2)
		stepSize := float32(lr / (1 - math.Pow(cfg.Beta1, float64(step))))
		bc2Sqrt := float32(math.Sqrt(1 - math.Pow(cfg.Beta2, float64(step))))
		for i, p := range ref {
			decay := float32(1)
			if !NoDecay(p.Name) {
				decay = float32(1 - lr*cfg.WeightDecay)
			}
			w, m, v := p.Tensor.Data, rm[i], rv[i]
			for j := range w {
				var gj float32
				if grads[i] != nil {
					gj = grads[i][j]
				}
				m[j] = b1*m[j] + (1-b1)*gj
				v[j] = b2*v[j] + (1-b2)*gj*gj
				w[j] = w[j]*decay - stepSize*m[j]/(float32(math.Sqrt(float64(v[j])))/bc2Sqrt+float32(cfg.Eps))
			}
		}
	}
	for i := range whole {
		for j, x := range whole[i].Tensor.Data {
			if math.Float32bits(x) != math.Float32bits(sliced[i].Tensor.Data[j]) || math.Float32bits(x) != math.Float32bits(ref[i].Tensor.Data[j]) {
				t.Fatalf("%s[%d]: Step %v, sliced Update %v, reference %v", whole[i].Name, j, x, sliced[i].Tensor.Data[j], ref[i].Tensor.Data[j])
			}
		}
	}
}
