package inproc

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

const vocab = 64

// tinyLlama is a random 2-layer model with C = 32.
func tinyLlama(t testing.TB, seed uint64) *llama.Model {
	t.Helper()
	m, err := llama.New(llama.Config{VocabSize: vocab, Hidden: 32, Intermediate: 64, Layers: 2, Heads: 4, KVHeads: 2,
		RMSNormEps: 1e-5, TieWordEmbeddings: true})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(rand.New(rand.NewPCG(seed, 1)))
	return m
}

// tinyConfig is tinyLlama's config.json.
const tinyConfig = `{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 32,
"intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
"rms_norm_eps": 1e-05, "tie_word_embeddings": true}`

// ragged returns n random sequences with prompts of 1–4 and responses of
// 1–6 tokens.
func ragged(seed uint64, n int) role.Sequences {
	r := rand.New(rand.NewPCG(seed, 2))
	var s role.Sequences
	for range n {
		p, a := 1+r.IntN(4), 1+r.IntN(6)
		toks := make([]int32, p+a)
		for j := range toks {
			toks[j] = int32(r.IntN(vocab))
		}
		s.Tokens, s.PromptLens = append(s.Tokens, toks), append(s.PromptLens, p)
	}
	return s
}

// perToken returns random rows shaped like s's responses.
func perToken(seed uint64, s role.Sequences, scale float64) role.PerToken {
	r := rand.New(rand.NewPCG(seed, 3))
	out := make(role.PerToken, s.Len())
	for i := range out {
		out[i] = make([]float32, s.ResponseLen(i))
		for j := range out[i] {
			out[i][j] = float32(r.NormFloat64() * scale)
		}
	}
	return out
}

// unpaddedLogProbs is the twin of the padded layout: one sequence at a
// time, no padding, log-probs read straight from the logits.
func unpaddedLogProbs(m model.CausalLM, s role.Sequences) role.PerToken {
	out := make(role.PerToken, s.Len())
	for i, toks := range s.Tokens {
		n := len(toks)
		pos := make([]int32, n)
		for j := range pos {
			pos[j] = int32(j)
		}
		logits := m.Forward(nil, toks, pos, nil, 1, n)
		lsm := tensor.LogSoftmax(nil, tensor.Reshape(nil, logits, n, vocab))
		p := s.PromptLens[i]
		for j := p; j < n; j++ {
			out[i] = append(out[i], lsm.Data[(j-1)*vocab+int(toks[j])])
		}
	}
	return out
}

// close reports |a − b| ≤ tol·max(1, |b|).
func close(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

func maxDiff(t testing.TB, a, b role.PerToken) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d rows vs %d", len(a), len(b))
	}
	var d float64
	for i := range a {
		if len(a[i]) != len(b[i]) {
			t.Fatalf("row %d: %d vs %d values", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			d = math.Max(d, math.Abs(float64(a[i][j]-b[i][j])))
		}
	}
	return d
}

func TestReference_LogProbs(t *testing.T) {
	m := tinyLlama(t, 1)
	s := ragged(7, 9)
	want := unpaddedLogProbs(m, s)
	for _, fb := range []int{0, 1, 4} {
		res, err := NewReference(m, fb).LogProbs(context.Background(), role.LogProbsRequest{Seqs: s})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(t, res.LogProbs, want); d > 1e-5 {
			t.Fatalf("forward batch %d: padded log-probs differ from the unpadded twin by %g", fb, d)
		}
	}
	t.Run("GPT2", func(t *testing.T) {
		g, err := gpt2.New(gpt2.Config{VocabSize: vocab, MaxPositions: 16, Hidden: 32, Layers: 2, Heads: 4, LayerNormEps: 1e-5})
		if err != nil {
			t.Fatal(err)
		}
		g.Init(rand.New(rand.NewPCG(5, 5)))
		c, err := Clone(g)
		if err != nil {
			t.Fatal(err)
		}
		res, err := NewReference(c, 3).LogProbs(context.Background(), role.LogProbsRequest{Seqs: s})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(t, res.LogProbs, unpaddedLogProbs(g, s)); d > 1e-5 {
			t.Fatalf("GPT-2 clone's padded log-probs differ by %g", d)
		}
	})
	t.Run("BadLayout", func(t *testing.T) {
		bad := role.Sequences{Tokens: [][]int32{{1, 2}}, PromptLens: []int{2}}
		if _, err := NewReference(m, 0).LogProbs(context.Background(), role.LogProbsRequest{Seqs: bad}); err == nil {
			t.Fatal("a sequence without a response was accepted")
		}
	})
}

func TestCritic_Values(t *testing.T) {
	// The value of response token j is the head's value at the position
	// just before it (P+j−1).
	sm := head.NewScoreModel(tinyLlama(t, 2), 32)
	sm.Head.Init(rand.New(rand.NewPCG(3, 3)))
	c, err := NewCritic(sm, nil, nil, optim.DefaultConfig(), 2)
	if err != nil {
		t.Fatal(err)
	}
	s := ragged(8, 5)
	res, err := c.Values(context.Background(), role.ValuesRequest{Seqs: s})
	if err != nil {
		t.Fatal(err)
	}
	for i, toks := range s.Tokens {
		n := len(toks)
		pos := make([]int32, n)
		for j := range pos {
			pos[j] = int32(j)
		}
		v := sm.Values(nil, toks, pos, nil, 1, n)
		for j, got := range res.Values[i] {
			want := v.Data[s.PromptLens[i]-1+j]
			if math.Abs(float64(got-want)) > 1e-5 {
				t.Fatalf("sequence %d token %d: value %g, want %g", i, j, got, want)
			}
		}
	}
}

// actorStep is a PPO step over s split into micro-batches of mb.
func actorStep(s role.Sequences, old, adv role.PerToken, mb int, lc rl.ActorLossConfig) role.ActorStep {
	req := role.ActorStep{Loss: lc, LR: 1e-2, MaxNorm: 1}
	var masks []*tensor.Tensor
	for lo := 0; lo < s.Len(); lo += mb {
		var idx []int
		for i := lo; i < min(lo+mb, s.Len()); i++ {
			idx = append(idx, i)
		}
		sub := s.Select(idx)
		masks = append(masks, sub.Mask())
		req.MicroBatches = append(req.MicroBatches, role.ActorMicroBatch{Seqs: sub, OldLogProbs: old.Select(idx),
			Advantages: adv.Select(idx), RefLogProbs: old.Select(idx)})
	}
	req.Norm = rl.StepLossNorm(masks...)
	return req
}

func TestActor_TrainStep(t *testing.T) {
	ctx := context.Background()
	s := ragged(11, 8)
	adv := perToken(5, s, 1)
	losses := []struct {
		name string
		loss rl.ActorLossConfig
	}{
		{"PPO", rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig()}},
		{"SeqMean+KL+Entropy", rl.ActorLossConfig{Policy: rl.PolicyLossConfig{Type: rl.PolicyPPO, ClipLow: 0.2, ClipHigh: 0.28,
			DualClip: 3, Aggregation: rl.SeqMeanTokenMean}, KLCoef: 0.1, KLEstimator: rl.K3, EntropyCoef: 0.01}},
		{"GSPO", rl.ActorLossConfig{Policy: rl.PolicyLossConfig{Type: rl.PolicyGSPO, ClipLow: 3e-4, ClipHigh: 4e-4, Aggregation: rl.TokenMean}}},
	}
	for _, tc := range losses {
		t.Run(tc.name, func(t *testing.T) {
			// micro-batch 8 × 1 and 2 × 4 and 3 × 3 (uneven) must give the
			// same loss, gradient norm and update: the losses are normalised
			// by the step's totals. (The first AdamW step moves each weight
			// by ±lr whatever the gradient's scale, so the loss and the
			// gradient norm are what catch a wrong normalisation.)
			var ref []float32
			var refRes role.ActorStepResult
			for _, mb := range []int{8, 2, 3} {
				m := tinyLlama(t, 4)
				a, err := NewActor(train.Model{Module: m}, optim.DefaultConfig(), 0)
				if err != nil {
					t.Fatal(err)
				}
				lp, err := a.LogProbs(ctx, role.LogProbsRequest{Seqs: s})
				if err != nil {
					t.Fatal(err)
				}
				before := m.Embed.Clone()
				res, err := a.TrainStep(ctx, actorStep(s, lp.LogProbs, adv, mb, tc.loss))
				if err != nil {
					t.Fatal(err)
				}
				if res.Skipped || math.IsNaN(res.Loss) || res.Tokens == 0 {
					t.Fatalf("micro %d: %+v", mb, res)
				}
				if math.Abs(res.RatioMean-1) > 1e-5 || res.ClipFrac != 0 {
					t.Fatalf("micro %d: first step on its own samples has ratio %g, clip frac %g", mb, res.RatioMean, res.ClipFrac)
				}
				changed := 0
				for i := range before.Data {
					if before.Data[i] != m.Embed.Data[i] {
						changed++
					}
				}
				if changed == 0 {
					t.Fatalf("micro %d: no weight changed", mb)
				}
				if ref == nil {
					ref, refRes = m.Embed.Data, res
					continue
				}
				if !close(res.Loss, refRes.Loss, 1e-5) || !close(res.GradNorm, refRes.GradNorm, 1e-5) || !close(res.Entropy, refRes.Entropy, 1e-5) {
					t.Fatalf("micro %d: loss %g, grad norm %g, entropy %g; micro-batch 8: %g, %g, %g", mb,
						res.Loss, res.GradNorm, res.Entropy, refRes.Loss, refRes.GradNorm, refRes.Entropy)
				}
				for i := range ref {
					if d := math.Abs(float64(ref[i] - m.Embed.Data[i])); d > 2e-6 {
						t.Fatalf("micro %d: weight %d differs by %g from micro-batch 8", mb, i, d)
					}
				}
			}
		})
	}
	t.Run("MissingReference", func(t *testing.T) {
		a, _ := NewActor(train.Model{Module: tinyLlama(t, 4)}, optim.DefaultConfig(), 0)
		req := actorStep(s, adv, adv, 4, rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig(), KLCoef: 0.1, KLEstimator: rl.K1})
		req.MicroBatches[1].RefLogProbs = nil
		if _, err := a.TrainStep(ctx, req); err == nil {
			t.Fatal("a KL loss without reference log-probs was accepted")
		}
	})
	t.Run("NonFiniteSkipped", func(t *testing.T) {
		m := tinyLlama(t, 4)
		a, _ := NewActor(train.Model{Module: m}, optim.DefaultConfig(), 0)
		bad := perToken(5, s, 1)
		bad[0][0] = float32(math.NaN())
		before := m.Embed.Clone()
		res, err := a.TrainStep(ctx, actorStep(s, adv, bad, 4, rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig()}))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Skipped {
			t.Fatal("a NaN advantage did not skip the step")
		}
		for i := range before.Data {
			if before.Data[i] != m.Embed.Data[i] {
				t.Fatal("a skipped step changed the weights")
			}
		}
	})
}

func TestActor_Weights(t *testing.T) {
	m := tinyLlama(t, 4)
	a, _ := NewActor(train.Model{Module: m}, optim.DefaultConfig(), 0)
	w, err := a.Weights(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Params) != len(m.Params()) {
		t.Fatalf("%d params, model has %d", len(w.Params), len(m.Params()))
	}
	for i, p := range m.Params() {
		if w.Params[i].Name != p.Name || !slices.Equal(w.Params[i].Shape, p.Tensor.Shape) || !slices.Equal(w.Params[i].Data, p.Tensor.Data) {
			t.Fatalf("param %d: %s %v, model has %s %v", i, w.Params[i].Name, w.Params[i].Shape, p.Name, p.Tensor.Shape)
		}
	}
	w.Params[0].Data[0] += 1
	if m.Params()[0].Tensor.Data[0] == w.Params[0].Data[0] {
		t.Fatal("Weights returned the actor's own tensors, not copies")
	}
}

func TestCritic_TrainStep(t *testing.T) {
	ctx := context.Background()
	s := ragged(12, 6)
	ret := perToken(6, s, 1)
	var ref []float32
	var refRes role.CriticStepResult
	for _, mb := range []int{6, 1, 4} {
		sm := head.NewScoreModel(tinyLlama(t, 2), 32)
		sm.Head.Init(rand.New(rand.NewPCG(3, 3)))
		c, err := NewCritic(sm, nil, nil, optim.DefaultConfig(), 0)
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Values(ctx, role.ValuesRequest{Seqs: s})
		if err != nil {
			t.Fatal(err)
		}
		req := role.CriticStep{Loss: rl.DefaultValueLossConfig(), LR: 1e-2, MaxNorm: 1}
		for lo := 0; lo < s.Len(); lo += mb {
			var idx []int
			for i := lo; i < min(lo+mb, s.Len()); i++ {
				idx = append(idx, i)
			}
			req.MicroBatches = append(req.MicroBatches, role.CriticMicroBatch{Seqs: s.Select(idx), OldValues: v.Values.Select(idx), Returns: ret.Select(idx)})
		}
		// Norm left zero: the role computes the step's totals itself.
		res, err := c.TrainStep(ctx, req)
		if err != nil || res.Skipped || !(res.Loss > 0) {
			t.Fatalf("micro %d: %+v, %v", mb, res, err)
		}
		if ref == nil {
			ref, refRes = sm.Head.Weight.Clone().Data, res
			continue
		}
		if !close(res.Loss, refRes.Loss, 1e-5) || !close(res.GradNorm, refRes.GradNorm, 1e-5) {
			t.Fatalf("micro %d: loss %g, grad norm %g; micro-batch 6: %g, %g", mb, res.Loss, res.GradNorm, refRes.Loss, refRes.GradNorm)
		}
		for i := range ref {
			if d := math.Abs(float64(ref[i] - sm.Head.Weight.Data[i])); d > 2e-6 {
				t.Fatalf("micro %d: head weight %d differs by %g", mb, i, d)
			}
		}
	}
}

func TestClone(t *testing.T) {
	m := tinyLlama(t, 9)
	c, err := Clone(m)
	if err != nil {
		t.Fatal(err)
	}
	cl := c.(*llama.Model)
	if cl.LMHead != cl.Embed {
		t.Fatal("tied weights came apart")
	}
	s := ragged(3, 3)
	if d := maxDiff(t, unpaddedLogProbs(m, s), unpaddedLogProbs(c, s)); d != 0 {
		t.Fatalf("clone computes differently (%g)", d)
	}
	cl.Embed.Data[0] += 1
	if m.Embed.Data[0] == cl.Embed.Data[0] {
		t.Fatal("clone shares memory with the original")
	}
	sm := head.NewScoreModel(m, 32)
	sm.Head.Init(rand.New(rand.NewPCG(1, 1)))
	sc, err := Clone(sm)
	if err != nil {
		t.Fatal(err)
	}
	if sc.(*head.ScoreModel).Head.Weight.Data[3] != sm.Head.Weight.Data[3] {
		t.Fatal("score head not copied")
	}
}
