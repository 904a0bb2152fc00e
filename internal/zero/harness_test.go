package zero

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// tinyLlama is a random 3-layer Llama with GQA, q/k/v biases (exempt
// from weight decay) and an untied LM head: every kind of parameter a
// bucket can hold, small enough for the whole stage × ranks grid.
func tinyLlama(t testing.TB) model.CausalLM {
	t.Helper()
	m, err := llama.New(llama.Config{VocabSize: 53, Hidden: 24, Intermediate: 40, Layers: 3, Heads: 4, KVHeads: 2,
		RMSNormEps: 1e-5, AttentionBias: true, MaxPositions: 64})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(tensor.NewRand(11))
	r := tensor.NewRand(12) // norms and biases away from their init, so decay exemptions matter
	for _, p := range m.Params() {
		if optim.NoDecay(p.Name) {
			for i := range p.Tensor.Data {
				p.Tensor.Data[i] += float32(r.NormFloat64()) * 0.1
			}
		}
	}
	return m
}

// stories is the embedded stories260K model (tied embedding, 5 layers).
func stories(t testing.TB) model.CausalLM {
	t.Helper()
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Module()
}

// run is one training run's shape.
type run struct {
	stage, ranks, micro int // micro: micro-batches per rank per step
	steps               int
	rows, tokens        int // one micro-batch is [rows, tokens]
	maxNorm             float64
	recompute, poison   bool
	nanStep             int // > 0: a NaN loss on rank ranks-1's last micro-batch of this step (1-based)
	skipStep            int // first step to run (1-based); earlier ones are assumed loaded
}

func (r run) global() int { return r.ranks * r.micro }

var testOptim = optim.Config{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}

// lr is step s's learning rate (1-based), changing from step to step.
func lr(s int) float64 { return lrScale * []float64{2, 1.5, 3, 1, 0.5, 2, 1, 1}[(s-1)%8] }

var lrScale = 1e-4

// microBatch is micro-batch j of step s of the global batch: random ids,
// positions and next-token targets (the last one of each row none).
func microBatch(s, j, rows, tokens, vocab int) (ids, pos, tg []int32) {
	r := tensor.NewRand(uint64(1000*s + j))
	for b := 0; b < rows; b++ {
		for i := 0; i < tokens; i++ {
			ids = append(ids, int32(r.IntN(vocab)))
			pos = append(pos, int32(i))
		}
	}
	for k := range ids {
		if k%tokens == tokens-1 {
			tg = append(tg, -1)
		} else {
			tg = append(tg, ids[k+1])
		}
	}
	return ids, pos, tg
}

// microLoss records micro-batch j of step s on tp: the negative sum of
// its target log-probs over the global batch's target count (so the
// micro-batches' losses add up to the global mean), times NaN when poisoned.
func microLoss(tp *tensor.Tape, m model.CausalLM, rn run, s, j int, nan bool) *tensor.Tensor {
	ids, pos, tg := microBatch(s, j, rn.rows, rn.tokens, m.Dims().Vocab)
	lp := model.TokenLogProbs(tp, m, ids, pos, nil, tg, rn.rows, rn.tokens)
	scale := float32(-1 / float64(rn.global()*rn.rows*(rn.tokens-1)))
	if nan {
		scale = float32(math.NaN())
	}
	return tensor.Scale(tp, tensor.Sum(tp, lp), scale)
}

// reference trains a copy of base in one process with plain AdamW and
// train.StepGuard's semantics (norm, finite check, clip, AdamW, zero
// grads) over the same global batches; it returns the final weights and
// each step's update.
func reference(t testing.TB, base model.CausalLM, rn run) (map[string][]float32, []Update) {
	t.Helper()
	m, err := model.Clone(base)
	if err != nil {
		t.Fatal(err)
	}
	ps := m.Params()
	opt, err := optim.New(ps, testOptim)
	if err != nil {
		t.Fatal(err)
	}
	var ups []Update
	for s := 1; s <= rn.steps; s++ {
		var loss float64
		for j := 0; j < rn.global(); j++ {
			tp := tensor.NewTape()
			l := microLoss(tp, m, rn, s, j, s == rn.nanStep && j == rn.global()-1)
			loss += float64(l.Item())
			tp.Backward(l)
		}
		u := Update{LR: lr(s), GradNorm: optim.GradNorm(ps)}
		if finite(loss) && finite(u.GradNorm) {
			optim.ClipGradNorm(ps, rn.maxNorm)
			opt.Step(lr(s))
		} else {
			u.Skipped = true
		}
		ps.ZeroGrad()
		ups = append(ups, u)
	}
	return weights(ps), ups
}

func weights(ps nn.Params) map[string][]float32 {
	out := make(map[string][]float32, len(ps))
	for _, p := range ps {
		out[p.Name] = append([]float32(nil), p.Tensor.Data...)
	}
	return out
}

// rankResult is what one rank ends a run with.
type rankResult struct {
	weights map[string][]float32
	updates []Update
	memory  Memory
}

// onRanks runs body on size goroutine ranks of a Local group. A rank that
// fails or panics closes the group after a grace period, so that the
// others fail instead of waiting for it (the grace lets ranks that fail
// alike finish on their own: Local may report a meeting completed just
// before a Close as closed); the run is bounded in time.
func onRanks(t testing.TB, size int, body func(ctx context.Context, c collective.Comm) error) []error {
	t.Helper()
	comms := collective.NewLocal(size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errs[r] = fmt.Errorf("rank %d panicked: %v", r, p)
					time.AfterFunc(500*time.Millisecond, func() { c.Close() })
				}
			}()
			if errs[r] = body(context.Background(), c); errs[r] != nil {
				time.AfterFunc(500*time.Millisecond, func() { c.Close() })
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		comms[0].Close()
		<-done
		t.Fatal("ranks did not finish within 2 minutes")
	}
	return errs
}

// hooks change what train does around the steps; nil ones do nothing.
type hooks struct {
	wrap func(c collective.Comm) collective.Comm    // the Comm the rank's engine uses
	load func(ctx context.Context, e *Engine) error // before the first step
	save func(ctx context.Context, e *Engine) error // after the last step
}

// train runs rn on every rank with an engine over a copy of base and
// returns each rank's result.
func train(t testing.TB, base model.CausalLM, rn run, h hooks) []rankResult {
	t.Helper()
	out, errs := trainErrs(t, base, rn, h)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// trainErrs is train returning each rank's error.
func trainErrs(t testing.TB, base model.CausalLM, rn run, h hooks) ([]rankResult, []error) {
	t.Helper()
	out := make([]rankResult, rn.ranks)
	errs := onRanks(t, rn.ranks, func(ctx context.Context, c collective.Comm) error {
		r := c.Rank()
		if h.wrap != nil {
			c = h.wrap(c)
		}
		res, err := trainRank(ctx, c, base, rn, h)
		out[r] = res
		return err
	})
	return out, errs
}

func trainRank(ctx context.Context, c collective.Comm, base model.CausalLM, rn run, h hooks) (rankResult, error) {
	var res rankResult
	m, err := model.Clone(base)
	if err != nil {
		return res, err
	}
	if _, ok := base.(plain); ok {
		m = plain{m}
	}
	e, err := New(ctx, c, m, Config{Stage: rn.stage, Optim: testOptim, MaxNorm: rn.maxNorm, Recompute: rn.recompute, Poison: rn.poison})
	if err != nil {
		return res, err
	}
	if b, ok := m.(model.Blocked); ok {
		b.SetBlockRunner(e.Runner())
	}
	if h.load != nil {
		if err := h.load(ctx, e); err != nil {
			return res, err
		}
	}
	for s := max(rn.skipStep, 1); s <= rn.steps; s++ {
		var loss float64
		for k := 0; k < rn.micro; k++ {
			j := c.Rank()*rn.micro + k // this rank's share of the global batch
			if err := e.BeginMicro(ctx); err != nil {
				return res, err
			}
			tp := tensor.NewTape()
			l := microLoss(tp, m, rn, s, j, s == rn.nanStep && j == rn.global()-1)
			loss += float64(l.Item())
			tp.Backward(l)
			if err := e.EndMicro(ctx); err != nil {
				return res, err
			}
		}
		global, err := SumF64(ctx, c, loss)
		if err != nil {
			return res, err
		}
		u, err := e.Step(ctx, global, lr(s))
		if err != nil {
			return res, err
		}
		res.updates = append(res.updates, u)
	}
	if h.save != nil {
		if err := h.save(ctx, e); err != nil {
			return res, err
		}
	}
	res.memory = e.Memory()
	release, err := e.Gather(ctx)
	if err != nil {
		return res, err
	}
	res.weights = weights(e.Params())
	release()
	return res, nil
}

// faulty is a rank's Comm whose nth call of op, once armed, fails as a
// broken connection does. Wrapping every rank's Comm alike makes the
// group fail at one collective on every rank (a lost peer makes the
// others fail wherever they are, which Local cannot reproduce exactly:
// it may report a meeting that completed just before a Close as closed).
type faulty struct {
	collective.Comm
	op    string // "AllGather", "ReduceScatter" or "AllReduceF64"
	n     int
	armed bool
	calls int
}

func (f *faulty) hit(op string) error {
	if !f.armed || op != f.op {
		return nil
	}
	if f.calls++; f.calls == f.n {
		return fmt.Errorf("injected: %w", collective.ErrClosed)
	}
	return nil
}

func (f *faulty) AllGather(ctx context.Context, shard, buf []float32) error {
	if err := f.hit("AllGather"); err != nil {
		return err
	}
	return f.Comm.AllGather(ctx, shard, buf)
}

func (f *faulty) ReduceScatter(ctx context.Context, buf, shard []float32) error {
	if err := f.hit("ReduceScatter"); err != nil {
		return err
	}
	return f.Comm.ReduceScatter(ctx, buf, shard)
}

func (f *faulty) AllReduceF64(ctx context.Context, buf []float64) error {
	if err := f.hit("AllReduceF64"); err != nil {
		return err
	}
	return f.Comm.AllReduceF64(ctx, buf)
}

// relDiff is ‖a−b‖/‖b‖ and the largest element difference.
func relDiff(a, b []float32) (rel, maxAbs float64) {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
		maxAbs = max(maxAbs, math.Abs(d))
	}
	if den == 0 {
		return math.Sqrt(num), maxAbs
	}
	return math.Sqrt(num / den), maxAbs
}

// closeTo checks got against want tensor by tensor within tol relative;
// it returns the worst relative and element differences.
func closeTo(t testing.TB, what string, got, want map[string][]float32, tol float64) (worstRel, worstAbs float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d tensors, want %d", what, len(got), len(want))
	}
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			t.Fatalf("%s: %s has %d values, want %d", what, name, len(g), len(w))
		}
		rel, abs := relDiff(g, w)
		if !(rel <= tol) {
			t.Errorf("%s: %s differs by %.3g relative (max element diff %.3g), want ≤ %g", what, name, rel, abs, tol)
		}
		worstRel, worstAbs = max(worstRel, rel), max(worstAbs, abs)
	}
	return worstRel, worstAbs
}

// sameBits checks got equals want bit for bit.
func sameBits(t testing.TB, what string, got, want map[string][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d tensors, want %d", what, len(got), len(want))
	}
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			t.Fatalf("%s: %s has %d values, want %d", what, name, len(g), len(w))
		}
		for i := range w {
			if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
				t.Fatalf("%s: %s[%d] = %v, want %v bit for bit", what, name, i, g[i], w[i])
			}
		}
	}
}
