package zero

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// TestRecompute: gradient checkpointing through the engine's runner
// (Config.Recompute: one gather serves recomputation and backward at
// stage 3) gives the bits of keeping the activations, at stages 1, 2
// and 3.
func TestRecompute(t *testing.T) {
	for _, mc := range []struct {
		name   string
		base   model.CausalLM
		tokens int
	}{{"tiny-llama", tinyLlama(t), 8}, {"stories260K", stories(t), 16}} {
		rn := run{stage: 3, ranks: 2, micro: 2, steps: 3, rows: 2, tokens: mc.tokens}
		want := train(t, mc.base, rn, hooks{})
		for _, stage := range []int{1, 2, 3} {
			rn.stage, rn.recompute = stage, true
			got := train(t, mc.base, rn, hooks{})
			sameBits(t, fmt.Sprintf("%s stage %d with recomputation vs stage 3 without", mc.name, stage), got[1].weights, want[1].weights)
		}
	}
}

// TestReleasedWeights: at stage 3 a block's weights exist only between
// the runner's gather and release. A forward pass that bypasses the
// runner reads released weights: with Config.Poison they read NaN, so
// the logits are NaN; without it they have no data and the op panics.
// The rest bucket is released outside micro-batches.
func TestReleasedWeights(t *testing.T) {
	base := tinyLlama(t)
	ids, pos, _ := microBatch(1, 0, 2, 8, base.Dims().Vocab)
	for _, poison := range []bool{true, false} {
		errs := onRanks(t, 2, func(ctx context.Context, c collective.Comm) error {
			m, err := model.Clone(base)
			if err != nil {
				return err
			}
			e, err := New(ctx, c, m, Config{Stage: 3, Optim: testOptim, Poison: poison})
			if err != nil {
				return err
			}
			blocked := m.(model.Blocked)
			blocked.SetBlockRunner(e.Runner())
			if err := e.BeginMicro(ctx); err != nil {
				return err
			}
			want, err := model.Clone(base)
			if err != nil {
				return err
			}
			if got, w := m.Forward(nil, ids, pos, nil, 2, 8), want.Forward(nil, ids, pos, nil, 2, 8); !slicesEqualBits(got.Data, w.Data) {
				return fmt.Errorf("logits through the runner differ from the unsharded model's")
			}
			blocked.SetBlockRunner(nil) // now the blocks read released weights
			var logits *tensor.Tensor
			panicked := func() (p bool) {
				defer func() { p = recover() != nil }()
				logits = m.Forward(nil, ids, pos, nil, 2, 8)
				return false
			}()
			switch {
			case poison && (panicked || !tensor.HasNonFinite(logits.Data)):
				return fmt.Errorf("poison: a forward pass over released weights gave finite logits (panicked %v)", panicked)
			case !poison && !panicked:
				return fmt.Errorf("a forward pass over released (nil) weights did not panic")
			}
			blocked.SetBlockRunner(e.Runner())
			if err := e.EndMicro(ctx); err != nil {
				return err
			}
			for _, p := range e.Params() {
				if poison && (len(p.Tensor.Data) == 0 || !math.IsNaN(float64(p.Tensor.Data[0]))) || !poison && p.Tensor.Data != nil {
					return fmt.Errorf("%s is not released after the micro-batch (%d values)", p.Name, len(p.Tensor.Data))
				}
				if strings.Contains(p.Name, "layers.") && p.Tensor.Grad != nil {
					return fmt.Errorf("%s still holds a gradient buffer after the micro-batch", p.Name)
				}
			}
			return nil
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("poison %v: %v", poison, err)
		}
	}
}

func slicesEqualBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestMemory checks each rank's reported bytes against the formulas of
// docs/ZERO.md at 4 ranks, from the model's block sizes and
// collective.Partition: with Ψ parameters and S = Σ shard lengths,
// stage 0 holds 4Ψ + (4Ψ + 4S) + 8Ψ, stage 3 4S + 4S + 8S, plus scratch.
func TestMemory(t *testing.T) {
	base := stories(t)
	const n = 4
	var psi, maxBlock int
	var lens []int // bucket lengths: blocks, then the rest
	for l := 0; l < base.Dims().Layers; l++ {
		lens = append(lens, base.(model.Blocked).BlockParams(l).Count())
		maxBlock = max(maxBlock, lens[l])
	}
	psi = base.Params().Count()
	rest := psi
	for _, x := range lens {
		rest -= x
	}
	lens = append(lens, rest)
	got := map[int][]Memory{}
	for stage := 0; stage <= 3; stage++ {
		for _, r := range train(t, base, run{stage: stage, ranks: n, micro: 1, steps: 1, rows: 1, tokens: 8}, hooks{}) {
			got[stage] = append(got[stage], r.memory)
		}
	}
	for r := 0; r < n; r++ {
		s, maxShard := 0, 0
		for _, l := range lens {
			s += collective.Partition(l, n)[r].Len()
			maxShard = max(maxShard, collective.Partition(l, n)[r].Len())
		}
		P, S, B, R, T := int64(4*psi), int64(4*s), int64(4*maxBlock), int64(4*rest), int64(4*maxShard)
		want := map[int]Memory{
			0: {Params: P, Grads: P + S, Optim: 2 * P, Scratch: T},
			1: {Params: P, Grads: P + S, Optim: 2 * S, Scratch: T},
			2: {Params: P, Grads: S, Optim: 2 * S, Scratch: T + B + R},
			3: {Params: S, Grads: S, Optim: 2 * S, Scratch: T + 2*B + 2*R},
		}
		for stage := 0; stage <= 3; stage++ {
			if got[stage][r] != want[stage] {
				t.Errorf("rank %d stage %d: %+v, want %+v", r, stage, got[stage][r], want[stage])
			}
		}
		m0, m3 := got[0][r], got[3][r]
		state0, state3 := m0.Params+m0.Grads+m0.Optim, m3.Params+m3.Grads+m3.Optim
		t.Logf("rank %d (Ψ=%d): stage 0 %d B of parameters+gradients+moments, stage 3 %d B (%.3f of stage 0; 1/4 of its 16Ψ is %d) + %d B scratch (one block %d B, rest %d B)",
			r, psi, state0, state3, float64(state3)/float64(state0), 4*psi, m3.Scratch, B, R)
	}
}

// TestNonFinite: a NaN loss on one rank's micro-batch skips the step on
// every rank (no update, gradients dropped) at every stage, and the run
// goes on as the single process's does.
func TestNonFinite(t *testing.T) {
	base := tinyLlama(t)
	rn := run{ranks: 2, micro: 2, steps: 3, rows: 2, tokens: 8, nanStep: 2, maxNorm: 0.76}
	want, wantUps := reference(t, base, run{ranks: 1, micro: 4, steps: 3, rows: 2, tokens: 8, nanStep: 2, maxNorm: 0.76})
	if !wantUps[1].Skipped {
		t.Fatal("the reference did not skip step 2")
	}
	var stage0 []rankResult
	for stage := 0; stage <= 3; stage++ {
		rn.stage = stage
		got := train(t, base, rn, hooks{})
		for r, res := range got {
			for i, u := range res.updates {
				if u.Skipped != (i == 1) {
					t.Fatalf("stage %d rank %d step %d: skipped %v", stage, r, i+1, u.Skipped)
				}
			}
		}
		closeTo(t, fmt.Sprintf("stage %d vs single process", stage), got[0].weights, want, 1e-6)
		if stage == 0 {
			stage0 = got
		} else {
			sameBits(t, fmt.Sprintf("stage %d vs stage 0", stage), got[0].weights, stage0[0].weights)
		}
	}
}

// TestHookErrors: a collective that fails inside a block hook (which
// returns nothing) fails the micro-batch with an error naming the rank,
// the step and the bucket; the engine then refuses to go on.
func TestHookErrors(t *testing.T) {
	base := tinyLlama(t)
	for _, tc := range []struct {
		stage int
		op    string
		n     int
		want  string
	}{
		{3, "AllGather", 3, "step 1: gather layer.1 for its forward pass"},
		{3, "AllGather", 1, "step 1: gather rest for the micro-batch"},
		{2, "ReduceScatter", 1, "step 1: reduce-scatter layer.2's gradients after its backward pass"},
		{3, "ReduceScatter", 5, "step 2: reduce-scatter layer.2's gradients after its backward pass"}, // 3 blocks + rest per micro-batch, 1 micro-batch per step
	} {
		rn := run{stage: tc.stage, ranks: 2, micro: 1, steps: 2, rows: 1, tokens: 8}
		_, errs := trainErrs(t, base, rn, hooks{wrap: func(c collective.Comm) collective.Comm {
			return &faulty{Comm: c, op: tc.op, n: tc.n, armed: true}
		}})
		for r, err := range errs {
			prefix := fmt.Sprintf("zero: rank %d, %s", r, tc.want)
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !errors.Is(err, collective.ErrClosed) {
				t.Errorf("stage %d, %s #%d failing: rank %d: %v; want an error starting %q wrapping collective.ErrClosed", tc.stage, tc.op, tc.n, r, err, prefix)
			}
			t.Logf("stage %d, %s #%d failing: %v", tc.stage, tc.op, tc.n, err)
		}
	}
}

// plain hides a model's blocks from the engine (not model.Blocked).
type plain struct{ model.CausalLM }

// TestNotBlocked: a model whose blocks the engine cannot run is one
// bucket: stages 0 and 1 train it, stages 2 and 3 refuse it.
func TestNotBlocked(t *testing.T) {
	base := plain{tinyLlama(t)}
	rn := run{stage: 1, ranks: 2, micro: 2, steps: 2, rows: 2, tokens: 8}
	want, _ := reference(t, base.CausalLM, run{ranks: 1, micro: 4, steps: 2, rows: 2, tokens: 8})
	closeTo(t, "one bucket, stage 1", train(t, base, rn, hooks{})[0].weights, want, 1e-6)
	rn.stage = 2
	_, errs := trainErrs(t, base, rn, hooks{})
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "model.Blocked") {
		t.Fatalf("stage 2 on a model without blocks: %v", errs[0])
	}
}

// TestReplicaCheck: ranks must start from the same model.
func TestReplicaCheck(t *testing.T) {
	base := tinyLlama(t)
	other, err := llama.New(llama.Config{VocabSize: 53, Hidden: 24, Intermediate: 48, Layers: 3, Heads: 4, KVHeads: 2, RMSNormEps: 1e-5, AttentionBias: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mk   func(rank int) model.CausalLM
		want string
	}{
		{"weights", func(rank int) model.CausalLM {
			m, _ := model.Clone(base)
			if rank == 1 {
				m.Params()[3].Tensor.Data[0] += 1e-3
			}
			return m
		}, "rank 1's weights differ from rank 0's"},
		{"shapes", func(rank int) model.CausalLM {
			if rank == 1 {
				return other
			}
			m, _ := model.Clone(base)
			return m
		}, "rank 1's parameter names or shapes differ from rank 0's"},
	} {
		errs := onRanks(t, 2, func(ctx context.Context, c collective.Comm) error {
			_, err := New(ctx, c, tc.mk(c.Rank()), Config{Stage: 1, Optim: testOptim})
			return err
		})
		for r, err := range errs {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: rank %d: %v, want %q", tc.name, r, err, tc.want)
			}
		}
	}
}

// TestMisuse: calls out of order are errors, not hangs or corruption.
func TestMisuse(t *testing.T) {
	base := tinyLlama(t)
	errs := onRanks(t, 1, func(ctx context.Context, c collective.Comm) error {
		m, _ := model.Clone(base)
		if _, err := New(ctx, c, m, Config{Stage: 4}); err == nil {
			return errors.New("stage 4 accepted")
		}
		e, err := New(ctx, c, m, Config{Stage: 3, Optim: testOptim})
		if err != nil {
			return err
		}
		if err := e.EndMicro(ctx); err == nil {
			return errors.New("EndMicro without BeginMicro accepted")
		}
		m.(model.Blocked).SetBlockRunner(e.Runner())
		ids, pos, _ := microBatch(1, 0, 1, 8, base.Dims().Vocab)
		var msg any
		func() {
			defer func() { msg = recover() }()
			m.Forward(nil, ids, pos, nil, 1, 8)
		}()
		if msg == nil { // the embedding's released table, or the first block's check
			return errors.New("a stage-3 forward pass outside a micro-batch and without Gather ran")
		}
		release, err := e.Gather(ctx)
		if err != nil {
			return err
		}
		if err := e.BeginMicro(ctx); err == nil {
			return errors.New("BeginMicro while gathered accepted")
		}
		if got, want := m.Forward(nil, ids, pos, nil, 1, 8), base.Forward(nil, ids, pos, nil, 1, 8); !slicesEqualBits(got.Data, want.Data) {
			return errors.New("a forward pass over gathered parameters differs from the model's")
		}
		release()
		if err := e.BeginMicro(ctx); err != nil {
			return err
		}
		if _, err := e.Step(ctx, 0, 1e-3); err == nil {
			return errors.New("Step inside a micro-batch accepted")
		}
		if err := e.EndMicro(ctx); err != nil {
			return err
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
