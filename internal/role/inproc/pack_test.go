package inproc

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/gemm"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// packTol is the bar packed results must meet against padded ones:
// per-token values within packTol·max(1, |padded|), per-tensor gradients
// and weights within packTol relative (‖a − b‖/‖b‖).
const packTol = 1e-6

// spread returns sequences of the given prompt and response lengths over
// a vocabulary of v tokens, random tokens.
func spread(seed uint64, v int, lens ...[2]int) role.Sequences {
	r := rand.New(rand.NewPCG(seed, 4))
	var s role.Sequences
	for _, pl := range lens {
		toks := make([]int32, pl[0]+pl[1])
		for j := range toks {
			toks[j] = int32(1 + r.IntN(v-1))
		}
		s.Tokens, s.PromptLens = append(s.Tokens, toks), append(s.PromptLens, pl[0])
	}
	return s
}

// packCases are batches whose layouts differ: lengths of 2 (a one-token
// prompt and a one-token response), a long sequence that fills a row by
// itself, sequences that share rows (starting at multiples of PackAlign)
// and fill one exactly, equal lengths and a batch of one (nothing to
// pack: the padded layout).
var packCases = []struct {
	name string
	lens [][2]int
	rows int // rows of the packed layout (first fit, rows as long as the longest)
}{
	{"Spread", [][2]int{{1, 1}, {30, 40}, {5, 20}, {1, 1}, {12, 3}, {20, 30}, {3, 9}, {40, 2}}, 5},
	{"Ones", [][2]int{{1, 1}, {1, 1}, {1, 1}, {20, 20}}, 3},
	{"FullRow", [][2]int{{32, 32}, {10, 22}, {20, 12}}, 2}, // each row full: 64 and 32 + 32 tokens
	{"Equal", [][2]int{{4, 6}, {5, 5}, {9, 1}}, 3},
	{"Single", [][2]int{{6, 17}}, 1},
}

func TestPackedLayout(t *testing.T) {
	for _, tc := range packCases {
		t.Run(tc.name, func(t *testing.T) {
			s := spread(1, vocab, tc.lens...)
			pad, pk := newLayout(s), newPackedLayout(s)
			if pk.rows != tc.rows || pk.t != pad.t || pk.b != pad.b || pk.a != pad.a || pad.rows != pad.b {
				t.Fatalf("packed [%d rows, T %d] B %d A %d; padded [%d, %d] B %d A %d; want %d rows",
					pk.rows, pk.t, pk.b, pk.a, pad.rows, pad.t, pad.b, pad.a, tc.rows)
			}
			if pk.rows == pk.b { // nothing shares a row: the padded layout
				if pk.seg != nil || !slices.Equal(pk.ids, pad.ids) || !slices.Equal(pk.gather, pad.gather) {
					t.Fatal("a packed layout without shared rows is not the padded one")
				}
				return
			}
			if pad.seg != nil || len(pk.seg) != pk.rows*pk.t {
				t.Fatalf("segment ids: padded %d, packed %d for %d positions", len(pad.seg), len(pk.seg), pk.rows*pk.t)
			}
			for i, toks := range s.Tokens {
				p := s.PromptLens[i]
				for j := range pk.a {
					at := pk.gather[i*pk.a+j]
					if pk.seg[at] != int32(i) {
						t.Fatalf("sequence %d token %d: gathered from segment %d", i, j, pk.seg[at])
					}
					if j >= s.ResponseLen(i) {
						if pk.targets[at] >= 0 || pad.targets[pad.gather[i*pad.a+j]] >= 0 {
							t.Fatalf("sequence %d: past its response, position %d has target %d", i, at, pk.targets[at])
						}
						continue
					}
					if pk.ids[at] != toks[p-1+j] || pk.pos[at] != int32(p-1+j) || pk.targets[at] != toks[p+j] {
						t.Fatalf("sequence %d token %d: id %d pos %d target %d, want %d %d %d", i, j,
							pk.ids[at], pk.pos[at], pk.targets[at], toks[p-1+j], p-1+j, toks[p+j])
					}
				}
			}
			// Every sequence is whole and contiguous in one row, with
			// positions from 0; the rest of the row is padding (−1).
			count := map[int32]int{}
			for n, sg := range pk.seg {
				if sg < 0 {
					continue
				}
				if count[sg] != int(pk.pos[n]) || pk.ids[n] != s.Tokens[sg][pk.pos[n]] {
					t.Fatalf("position %d: segment %d at pos %d, token %d", n, sg, pk.pos[n], pk.ids[n])
				}
				count[sg]++
			}
			for i, toks := range s.Tokens {
				if count[int32(i)] != len(toks) {
					t.Fatalf("sequence %d: %d of %d tokens placed", i, count[int32(i)], len(toks))
				}
			}
		})
	}
}

// storiesModel is a fresh copy of the embedded stories260K.
func storiesModel(t testing.TB) model.CausalLM {
	t.Helper()
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Model
}

// perTokenClose fails unless a and b agree within packTol·max(1, |b|);
// it returns the largest difference.
func perTokenClose(t *testing.T, what string, a, b role.PerToken) float64 {
	t.Helper()
	d := maxDiff(t, a, b)
	for i := range a {
		for j := range a[i] {
			if !close(float64(a[i][j]), float64(b[i][j]), packTol) {
				t.Fatalf("%s: sequence %d token %d: packed %g, padded %g", what, i, j, a[i][j], b[i][j])
			}
		}
	}
	return d
}

func TestPacked_LogProbsAndValues(t *testing.T) {
	ctx := context.Background()
	g, err := gpt2.New(gpt2.Config{VocabSize: vocab, MaxPositions: 128, Hidden: 32, Layers: 2, Heads: 4, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	g.Init(rand.New(rand.NewPCG(5, 5)))
	models := []struct {
		name string
		m    model.CausalLM
		v    int
	}{{"stories260K", storiesModel(t), 512}, {"Llama", tinyLlama(t, 3), vocab}, {"GPT2", g, vocab}}
	for _, mc := range models {
		sm := head.NewScoreModel(mc.m, mc.m.Dims().Hidden)
		sm.Head.Init(rand.New(rand.NewPCG(3, 3)))
		for _, tc := range packCases {
			s := spread(2, mc.v, tc.lens...)
			for _, fb := range []int{0, 3} {
				t.Run(fmt.Sprintf("%s/%s/fb%d", mc.name, tc.name, fb), func(t *testing.T) {
					ref := NewReference(mc.m, fb)
					crit, err := NewCritic(sm, nil, nil, optim.DefaultConfig(), fb)
					if err != nil {
						t.Fatal(err)
					}
					var lp, vs [2]role.PerToken
					for k, pack := range []bool{false, true} {
						r, err := ref.LogProbs(ctx, role.LogProbsRequest{Seqs: s, Pack: pack})
						if err != nil {
							t.Fatal(err)
						}
						v, err := crit.Values(ctx, role.ValuesRequest{Seqs: s, Pack: pack})
						if err != nil {
							t.Fatal(err)
						}
						lp[k], vs[k] = r.LogProbs, v.Values
					}
					dl := perTokenClose(t, "log-probs", lp[1], lp[0])
					dv := perTokenClose(t, "values", vs[1], vs[0])
					t.Logf("max |packed − padded|: log-probs %.3g, values %.3g", dl, dv)
				})
			}
		}
	}
}

// relDiff is ‖a − b‖/‖b‖ (‖a‖ when b is all zeros) and the largest
// element difference.
func relDiff(a, b []float32) (rel, maxAbs float64) {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
		maxAbs = math.Max(maxAbs, math.Abs(d))
	}
	if den == 0 {
		return math.Sqrt(num), maxAbs
	}
	return math.Sqrt(num / den), maxAbs
}

// tensorsClose fails unless every tensor of a is within packTol of b's
// (relative, per tensor) and logs the worst.
func tensorsClose(t *testing.T, what string, a, b map[string][]float32) {
	t.Helper()
	var worst, worstAbs float64
	var name string
	for k, bv := range b {
		rel, d := relDiff(a[k], bv)
		if !(rel <= packTol) {
			t.Fatalf("%s %s: packed differs from padded by %.3g relative (max element %.3g)", what, k, rel, d)
		}
		if rel > worst {
			worst, name = rel, k
		}
		worstAbs = math.Max(worstAbs, d)
	}
	t.Logf("%s: worst tensor %s at %.3g relative; max element difference %.3g", what, name, worst, worstAbs)
}

// gradsOf copies every parameter's gradient.
func gradsOf(ps nn.Params) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range ps {
		out[p.Name] = slices.Clone(p.Tensor.Grad)
	}
	return out
}

// packedStep is an actor step over cases Spread and FullRow (two
// micro-batches of different layouts), with every loss term.
func packedStep(v int) (role.ActorStep, role.Sequences) {
	var lens [][2]int
	lens = append(lens, packCases[0].lens...)
	lens = append(lens, packCases[2].lens...)
	s := spread(9, v, lens...)
	s.ActionMasks = make([][]bool, s.Len())
	for i := range s.ActionMasks {
		s.ActionMasks[i] = make([]bool, s.ResponseLen(i))
		for j := range s.ActionMasks[i] {
			s.ActionMasks[i][j] = (i+j)%5 != 4 // some environment tokens
		}
	}
	lc := rl.ActorLossConfig{Policy: rl.PolicyLossConfig{Type: rl.PolicyPPO, ClipLow: 0.2, ClipHigh: 0.28, DualClip: 3,
		Aggregation: rl.TokenMean}, KLCoef: 0.05, KLEstimator: rl.K3, EntropyCoef: 0.01}
	old := perToken(4, s, 0.5)
	for i := range old {
		for j := range old[i] {
			old[i][j] -= 3
		}
	}
	req := actorStep(s, old, perToken(5, s, 1), 8, lc)
	return req, s
}

// ownKernels runs f once with each GEMM kernel of this module (not a
// system BLAS, whose blocking is its own: with OpenBLAS a gradient
// differs by up to ~1.5e-6).
func ownKernels(t *testing.T, f func(t *testing.T)) {
	defer tensor.SetBackend(tensor.Active())
	for _, k := range gemm.Available() {
		if strings.HasPrefix(k.Name(), "blas") {
			continue
		}
		t.Run(k.Name(), func(t *testing.T) {
			tensor.SetBackend(tensor.CPU{Kernel: k})
			f(t)
		})
	}
}

func TestPacked_Gradients(t *testing.T) { ownKernels(t, packedGradients) }

// packedGradients runs one forward/backward per micro-batch, padded and
// packed, from the same weights: the loss and every parameter's gradient
// agree.
func packedGradients(t *testing.T) {
	m := storiesModel(t)
	a, err := NewActor(train.Model{Module: m}, optim.DefaultConfig(), 0)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := packedStep(512)
	var grads [2]map[string][]float32
	var res [2]role.ActorStepResult
	for k, pack := range []bool{false, true} {
		a.params.ZeroGrad()
		var w weighted
		for _, mb := range req.MicroBatches {
			a.microStep(layoutOf(mb.Seqs, pack), mb, req.Loss, req.Norm, &res[k], &w)
		}
		grads[k] = gradsOf(a.params)
	}
	a.params.ZeroGrad()
	if !close(res[1].Loss, res[0].Loss, packTol) || !close(res[1].KLLoss, res[0].KLLoss, packTol) || res[1].Tokens != res[0].Tokens {
		t.Fatalf("actor loss packed %+v, padded %+v", res[1], res[0])
	}
	t.Logf("actor loss packed %.9g, padded %.9g", res[1].Loss, res[0].Loss)
	tensorsClose(t, "actor gradient", grads[1], grads[0])

	sm := head.NewScoreModel(storiesModel(t), m.Dims().Hidden)
	sm.Head.Init(rand.New(rand.NewPCG(3, 3)))
	c, err := NewCritic(sm, nil, nil, optim.DefaultConfig(), 0)
	if err != nil {
		t.Fatal(err)
	}
	lc := rl.DefaultValueLossConfig()
	lc.Clip = 0.2
	var cres [2]role.CriticStepResult
	for k, pack := range []bool{false, true} {
		c.params.ZeroGrad()
		var w weighted
		for _, mb := range req.MicroBatches {
			cm := role.CriticMicroBatch{Seqs: mb.Seqs, OldValues: mb.OldLogProbs, Returns: mb.Advantages}
			c.microStep(layoutOf(mb.Seqs, pack), cm, lc, req.Norm, &cres[k], &w)
		}
		grads[k] = gradsOf(c.params)
	}
	if !close(cres[1].Loss, cres[0].Loss, packTol) {
		t.Fatalf("critic loss packed %g, padded %g", cres[1].Loss, cres[0].Loss)
	}
	tensorsClose(t, "critic gradient", grads[1], grads[0])
}

func TestPacked_TrainStep(t *testing.T) { ownKernels(t, packedTrainStep) }

// packedTrainStep runs whole optimizer steps (two micro-batches,
// clipping, AdamW) from the same weights: results and weights agree.
func packedTrainStep(t *testing.T) {
	ctx := context.Background()
	req, _ := packedStep(512)
	var ws [2]map[string][]float32
	var res [2]role.ActorStepResult
	for k, pack := range []bool{false, true} {
		m := storiesModel(t)
		a, err := NewActor(train.Model{Module: m}, optim.DefaultConfig(), 0)
		if err != nil {
			t.Fatal(err)
		}
		r := req
		r.Pack, r.LR = pack, 1e-3
		if res[k], err = a.TrainStep(ctx, r); err != nil || res[k].Skipped {
			t.Fatalf("pack %v: %+v, %v", pack, res[k], err)
		}
		ws[k] = snapshotParams(m.Params())
	}
	for _, f := range []struct {
		name string
		a, b float64
	}{{"loss", res[1].Loss, res[0].Loss}, {"policy loss", res[1].PolicyLoss, res[0].PolicyLoss}, {"KL", res[1].KLLoss, res[0].KLLoss},
		{"entropy", res[1].Entropy, res[0].Entropy}, {"grad norm", res[1].GradNorm, res[0].GradNorm}, {"ratio", res[1].RatioMean, res[0].RatioMean},
		{"approx KL", res[1].ApproxKL, res[0].ApproxKL}, {"clip", res[1].ClipFrac, res[0].ClipFrac}} {
		if !close(f.a, f.b, packTol) {
			t.Fatalf("%s: packed %.9g, padded %.9g", f.name, f.a, f.b)
		}
	}
	tensorsClose(t, "actor weights", ws[1], ws[0])
}

// snapshotParams copies every parameter's values.
func snapshotParams(ps nn.Params) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range ps {
		out[p.Name] = slices.Clone(p.Tensor.Data)
	}
	return out
}
