package train

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
)

// waveGrads gives the parameters varied gradients of roughly size scale
// (the same for the same arguments), with bad (NaN or ±Inf, if not 0)
// planted in the second parameter.
func waveGrads(ps nn.Params, scale float64, bad float64) {
	k := 0
	for _, p := range ps {
		p.Tensor.Grad = make([]float32, p.Tensor.Numel())
		for i := range p.Tensor.Grad {
			p.Tensor.Grad[i] = float32(scale * math.Sin(float64(k)*0.37))
			k++
		}
	}
	if bad != 0 {
		ps[1].Tensor.Grad[3] = float32(bad)
	}
}

func newGuard(t *testing.T, ps nn.Params, maxNorm float64, limit int) *StepGuard {
	t.Helper()
	opt, err := optim.New(ps, optim.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &StepGuard{Params: ps, Opt: opt, MaxNorm: maxNorm, Limit: limit}
}

func TestStepGuard_SkipLeavesStateUntouched(t *testing.T) {
	ps := stories(t).Params()
	g := newGuard(t, ps, 1, 0)
	waveGrads(ps, 0.01, 0)
	if u := g.Apply(1, 1e-3); u.Skipped { // moments are non-zero from here on
		t.Fatal("a finite step was skipped")
	}
	cases := []struct {
		name string
		loss float64
		bad  float64
	}{
		{"NaN loss", math.NaN(), 0},
		{"+Inf loss", math.Inf(1), 0},
		{"NaN gradient", 1, math.NaN()},
		{"-Inf gradient", 1, math.Inf(-1)},
	}
	for _, c := range cases {
		weights, state := snapshot(ps), g.Opt.State()
		waveGrads(ps, 0.01, c.bad)
		u := g.Apply(c.loss, 1e-3)
		if !u.Skipped || u.LR != 1e-3 {
			t.Fatalf("%s: %+v, want a skipped step", c.name, u)
		}
		if c.bad != 0 && finite(u.GradNorm) {
			t.Errorf("%s: grad norm %g reported finite", c.name, u.GradNorm)
		}
		if !reflect.DeepEqual(snapshot(ps), weights) {
			t.Errorf("%s: weights changed", c.name)
		}
		if !reflect.DeepEqual(g.Opt.State(), state) {
			t.Errorf("%s: optimizer state changed", c.name)
		}
		for _, p := range ps {
			if slices.ContainsFunc(p.Tensor.Grad, func(v float32) bool { return v != 0 }) {
				t.Fatalf("%s: gradient of %s not zeroed", c.name, p.Name)
			}
		}
	}
}

// TestStepGuard_ClipMatchesOptim: the guarded step is bit for bit
// optim's clipping followed by AdamW, with clipping on and off.
func TestStepGuard_ClipMatchesOptim(t *testing.T) {
	for _, maxNorm := range []float64{0, 0.5, 1e6} {
		a, b := stories(t).Params(), stories(t).Params()
		g := newGuard(t, a, maxNorm, 0)
		opt, err := optim.New(b, optim.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		for step := range 3 {
			lr := 1e-3 * float64(step+1)
			waveGrads(a, 0.05, 0)
			waveGrads(b, 0.05, 0)
			u := g.Apply(2.5, lr)
			norm := optim.ClipGradNorm(b, maxNorm)
			opt.Step(lr)
			b.ZeroGrad()
			if u.Skipped || u.GradNorm != norm || u.LR != lr {
				t.Fatalf("max_norm %g step %d: %+v, want grad norm %g", maxNorm, step, u, norm)
			}
			if maxNorm == 0.5 && norm <= maxNorm {
				t.Fatalf("the test's gradient (norm %g) is not clipped at %g", norm, maxNorm)
			}
		}
		if !reflect.DeepEqual(snapshot(a), snapshot(b)) || !reflect.DeepEqual(g.Opt.State(), opt.State()) {
			t.Fatalf("max_norm %g: guarded steps differ from clip + AdamW", maxNorm)
		}
	}
}

func TestStepGuard_Limit(t *testing.T) {
	ps := stories(t).Params()
	g := newGuard(t, ps, 1, 3)
	losses := []float64{math.NaN(), math.NaN(), 1, math.NaN(), math.NaN()}
	for i, loss := range losses {
		waveGrads(ps, 0.01, 0)
		if _, err := g.Step(loss, 1e-3); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
	}
	if g.Skips != (Skips{Run: 2, Total: 4}) {
		t.Fatalf("skips %+v, want run 2 of 4", g.Skips)
	}
	waveGrads(ps, 0.01, 0)
	_, err := g.Step(math.Inf(1), 1e-3)
	if !errors.Is(err, ErrNonFinite) || err.Error() != "non-finite loss or gradient in 3 consecutive steps" {
		t.Fatalf("third skipped step in a row: %v", err)
	}
	if g.Opt.Steps() != 1 {
		t.Fatalf("%d AdamW steps, want the one finite step", g.Opt.Steps())
	}
	var s Skips // limit 0: counts, never fails
	for range 10 {
		if err := s.Count(true, 0); err != nil {
			t.Fatal(err)
		}
	}
	if s != (Skips{Run: 10, Total: 10}) {
		t.Fatalf("skips %+v", s)
	}
}

// TestPlan_MatchesOldSchedules compares Plan with the two schedules it
// replaces: the Session's (steps ≥ 1 always) and PPO's per-role one
// (steps clamped to 1).
func TestPlan_MatchesOldSchedules(t *testing.T) {
	session := func(o OptimConfig, total int) optim.Schedule {
		warmup := int(math.Ceil(o.WarmupRatio * float64(total)))
		return optim.Schedule{Kind: o.Scheduler, PeakLR: o.LR, WarmupSteps: warmup, TotalSteps: total, MinLRRatio: o.MinLRRatio}
	}
	ppo := func(o OptimConfig, total int) optim.Schedule {
		total = max(total, 1)
		return optim.Schedule{Kind: o.Scheduler, PeakLR: o.LR, TotalSteps: total,
			WarmupSteps: int(math.Ceil(o.WarmupRatio * float64(total))), MinLRRatio: o.MinLRRatio}
	}
	def := DefaultConfig().Optim
	cases := []struct {
		o     OptimConfig
		steps int
	}{
		{def, 100},
		{def, 7},
		{OptimConfig{LR: 1e-3, Scheduler: optim.Constant, WarmupRatio: 0.5}, 9},
		{OptimConfig{LR: 9.65e-6, Scheduler: optim.CosineWithMinLR, WarmupRatio: 0.1, MinLRRatio: 0.2}, 33},
		{OptimConfig{LR: 5e-7, Scheduler: optim.CosineWithMinLR, WarmupRatio: 1, MinLRRatio: 0}, 4},
		{def, 1},
	}
	for _, c := range cases {
		got := Plan(c.o, c.steps)
		for name, old := range map[string]optim.Schedule{"session": session(c.o, c.steps), "ppo": ppo(c.o, c.steps)} {
			if got != old {
				t.Fatalf("%+v over %d steps: Plan %+v, %s %+v", c.o, c.steps, got, name, old)
			}
			for step := range c.steps + 3 {
				if a, b := got.LR(step), old.LR(step); math.Float64bits(a) != math.Float64bits(b) {
					t.Fatalf("%+v step %d: LR %v, %s %v", c.o, step, a, name, b)
				}
			}
		}
	}
	for _, steps := range []int{0, -3} { // PPO with every actor step frozen
		if got, old := Plan(def, steps), ppo(def, steps); got != old || got.TotalSteps != 1 {
			t.Fatalf("%d steps: Plan %+v, ppo %+v", steps, got, old)
		}
	}
}
