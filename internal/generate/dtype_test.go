package generate

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/half"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/llama"
)

// roundLinears rounds the weights SetStepDType converts (every projection
// and the untied LM head) to dt in place, so that an f32 engine on the
// result is the twin of a dt engine on the original.
func roundLinears(m *llama.Model, dt half.DType) {
	for _, p := range m.Params() {
		if strings.HasSuffix(p.Name, "proj.weight") || p.Name == "lm_head.weight" {
			for i, v := range p.Tensor.Data {
				p.Tensor.Data[i] = dt.ToF32(dt.FromF32(v))
			}
		}
	}
}

// An engine reading bf16 or f16 copies equals an f32 engine on weights
// rounded the same way: tokens exactly, log-probs to float rounding (the
// kernels sum in another order than the GEMM).
func TestEngine_DTypeMatchesRoundedTwin(t *testing.T) {
	for _, dt := range []half.DType{half.BF16, half.F16} {
		m := tinyLlama(t, 41)
		if m.Config.TieWordEmbeddings {
			t.Fatal("the twin needs an untied LM head")
		}
		twin := tinyLlama(t, 41)
		roundLinears(twin, dt)
		reqs := twinRequests(64)
		got := generate(t, newEngine(t, m, nil, Config{BlockSize: 4, DType: dt}), reqs...)
		want := generate(t, newEngine(t, twin, nil, Config{BlockSize: 4}), reqs...)
		sameResults(t, dt.String(), got, want, 2e-4)
		if m.StepDType() != dt {
			t.Fatalf("model steps in %v, want %v", m.StepDType(), dt)
		}
	}
}

// LoadWeights refreshes the 16-bit copies: afterwards the engine answers
// as a fresh bf16 engine on the new weights.
func TestEngine_DTypeLoadWeights(t *testing.T) {
	reqs := twinRequests(64)
	e := newEngine(t, tinyGPT2(t, 50), nil, Config{BlockSize: 4, DType: half.BF16})
	before := generate(t, e, reqs...)
	if err := e.LoadWeights(context.Background(), Weights{Params: tinyGPT2(t, 51).Params()}); err != nil {
		t.Fatal(err)
	}
	got := generate(t, e, reqs...)
	want := generate(t, newEngine(t, tinyGPT2(t, 51), nil, Config{BlockSize: 4, DType: half.BF16}), reqs...)
	sameResults(t, "after LoadWeights", got, want, 0)
	if same := before[0].Completions[0].RawLogProbs[0] == got[0].Completions[0].RawLogProbs[0]; same {
		t.Fatal("log-probs did not change with the weights")
	}
}

// A model without 16-bit support is refused with the dtype named.
func TestEngine_DTypeUnsupported(t *testing.T) {
	type plain struct{ model.Decoder }
	_, err := New(plain{tinyLlama(t, 1)}, nil, Config{DType: half.F16})
	if err == nil || !strings.Contains(err.Error(), "f16") {
		t.Fatalf("New = %v, want an error naming f16", err)
	}
	if err := (Config{DType: 7}).Validate(); err == nil {
		t.Fatal("Validate accepted DType 7")
	}
}

// stories260K, greedy from BOS for 200 tokens. Measured on AMD EPYC
// (AVX-512 kernels): f16 weights give the f32 engine's 200 tokens; bf16
// gives the first 185, then picks f32's runner-up at a near-tie (279 at
// −2.4515 vs 336 at −2.4557 under f32: 0.004 apart, less than bf16's 8
// significant bits move log-probs, up to 0.025 before that token). The
// test holds every dtype to: all 200 tokens equal, or a first difference
// that is f32's runner-up within dtypeLogProbTol of its top token; and,
// before it, raw log-probs within dtypeLogProbTol of f32's.
func TestEngine_DTypeStories260K(t *testing.T) {
	const n = 200
	req := Request{Prompt: []int32{1}, Params: SamplingParams{MaxNewTokens: n, IgnoreEOS: true, TopLogProbs: 2}}
	m, tok := stories(t)
	ref := generate(t, newEngine(t, m, tok, Config{}), req)[0].Completions[0]
	for _, dt := range []half.DType{half.BF16, half.F16} {
		m, tok := stories(t)
		c := generate(t, newEngine(t, m, tok, Config{DType: dt}), req)[0].Completions[0]
		div := len(c.Tokens)
		for i := range c.Tokens {
			if c.Tokens[i] != ref.Tokens[i] {
				div = i
				break
			}
		}
		worst := 0.0
		for i := 0; i < div; i++ {
			worst = max(worst, math.Abs(float64(c.RawLogProbs[i]-ref.RawLogProbs[i])))
		}
		t.Logf("%v: %d of %d greedy tokens equal to f32's; largest raw log-prob difference before that %.3g", dt, div, n, worst)
		if div < n { // f32's top two there must be a near-tie that dt's rounding flips
			top := ref.TopLogProbs[div]
			gap := float64(top[0].LogProb - top[1].LogProb)
			t.Logf("%v: token %d is %d, f32 gives %d; f32's top two there: %d (%.4f), %d (%.4f)", dt, div, c.Tokens[div],
				ref.Tokens[div], top[0].Token, top[0].LogProb, top[1].Token, top[1].LogProb)
			if top[1].Token != c.Tokens[div] || gap > dtypeLogProbTol[dt] {
				t.Errorf("%v: diverged at token %d to f32's %d, not a near-tie (log-prob gap %g)", dt, div, c.Tokens[div], gap)
			}
		}
		if worst > dtypeLogProbTol[dt] {
			t.Errorf("%v: raw log-probs differ from f32's by up to %g (tolerance %g)", dt, worst, dtypeLogProbTol[dt])
		}
	}
}

// dtypeLogProbTol is how far a greedy token's raw log-prob may move from
// f32's on stories260K: bf16 keeps 8 significant bits (relative rounding
// 2⁻⁹), f16 11.
var dtypeLogProbTol = map[half.DType]float64{half.BF16: 0.05, half.F16: 0.01}
