package load

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// tinyCase is one folder written by tools/models_make_tiny.py.
type tinyCase struct {
	name, arch, dtype string
	score             bool
	warn              string // a substring of the expected warning, if any
}

var tinyCases = []tinyCase{
	{name: "llama", arch: "LlamaForCausalLM", dtype: "F32"},
	{name: "qwen2", arch: "Qwen2ForCausalLM", dtype: "F32"},
	{name: "qwen3", arch: "Qwen3ForCausalLM", dtype: "F32"},
	{name: "mistral", arch: "MistralForCausalLM", dtype: "F32", warn: "sliding_window = 4096"},
	{name: "gpt2", arch: "GPT2LMHeadModel", dtype: "F32"},
	{name: "llama_seqcls", arch: "LlamaForSequenceClassification", dtype: "F32", score: true},
	{name: "llama_bf16", arch: "LlamaForCausalLM", dtype: "BF16"},
}

// expected is a tiny folder's expected.json plus expected.safetensors.
type expected struct {
	Kind    string    `json:"kind"`
	IDs     [][]int32 `json:"ids"`
	Targets [][]int32 `json:"targets"`
	Loss    float32   `json:"loss"`
	out     map[string][]float32
}

func readExpected(t *testing.T, dir string) *expected {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with tools/models_make_tiny.py)", err)
	}
	var e expected
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e.out = map[string][]float32{}
	for _, n := range f.Names() {
		if e.out[n], _, err = f.Float32(n); err != nil {
			t.Fatal(err)
		}
	}
	return &e
}

// flat returns ids, targets, positions 0..T−1 and B, T.
func (e *expected) flat() (ids, targets, pos []int32, b, t int) {
	b, t = len(e.IDs), len(e.IDs[0])
	for i := range e.IDs {
		ids = append(ids, e.IDs[i]...)
		targets = append(targets, e.Targets[i]...)
		for j := range t {
			pos = append(pos, int32(j))
		}
	}
	return
}

// TestLoad_Tiny loads every tiny folder and compares logits (or score
// values), the loss and the gradient of every parameter with PyTorch.
func TestLoad_Tiny(t *testing.T) {
	for _, c := range tinyCases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "tiny", c.name)
			l, err := Load(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if l.Arch != c.arch || l.DType != c.dtype || (l.Score != nil) != c.score {
				t.Errorf("arch %s dtype %s score %v, want %s %s %v", l.Arch, l.DType, l.Score != nil, c.arch, c.dtype, c.score)
			}
			if got := strings.Join(l.Warnings, "\n"); (c.warn == "") != (got == "") || !strings.Contains(got, c.warn) {
				t.Errorf("warnings %q, want one containing %q", got, c.warn)
			}
			checkTiny(t, l, readExpected(t, dir))
		})
	}
}

// checkTiny runs the model on the case's inputs and compares with PyTorch.
func checkTiny(t *testing.T, l *Loaded, e *expected) {
	t.Helper()
	ids, targets, pos, b, tl := e.flat()
	ps := l.Params()
	ps.ZeroGrad()
	tp := tensor.NewTape()
	var loss *tensor.Tensor
	if l.Score != nil {
		values := l.Score.Values(tp, ids, pos, nil, b, tl)
		if err := tt.MaxRelErr(values.Data, e.out["values"], 1e-6); err > 1e-5 {
			t.Errorf("values: max relative error %.3g > 1e-5", err)
		}
		last := head.LastNonPad(ids, b, tl, int32(l.PadTokenID))
		loss = tensor.Mean(tp, head.Pick(tp, values, last))
	} else {
		logits := l.Model.Forward(tp, ids, pos, nil, b, tl)
		if err := tt.MaxRelErr(logits.Data, e.out["logits"], 1e-6); err > 1e-5 {
			t.Errorf("logits: max relative error %.3g > 1e-5", err)
		}
		mask := tensor.New(b, tl)
		for i, v := range targets {
			if v >= 0 {
				mask.Data[i] = 1
			}
		}
		loss = tensor.MaskedMean(tp, tensor.TokenLogProbs(tp, logits, targets), mask)
	}
	if err := tt.MaxRelErr(loss.Data, []float32{e.Loss}, 1e-6); err > 1e-5 {
		t.Errorf("loss %v, PyTorch %v", loss.Item(), e.Loss)
	}
	tp.Backward(loss)
	grads := 0
	for _, p := range ps {
		want, ok := e.out["grad."+p.Name]
		if !ok {
			t.Errorf("PyTorch has no gradient for %s", p.Name)
			continue
		}
		grads++
		if err := tt.MaxRelErr(p.Tensor.Grad, want, 1e-6); err > 1e-4 {
			t.Errorf("grad %s: max relative error %.3g > 1e-4", p.Name, err)
		}
	}
	t.Logf("%s: loss %.6f, worst gradient relative error %.3g", l.Arch, loss.Item(), worstGrad(ps, e))
	if n := len(e.out) - 1; grads != n {
		t.Errorf("compared %d gradients, PyTorch has %d", grads, n)
	}
}

// worstGrad is the largest relative gradient error, for the test log.
func worstGrad(ps nn.Params, e *expected) float64 {
	w := 0.0
	for _, p := range ps {
		w = max(w, tt.MaxRelErr(p.Tensor.Grad, e.out["grad."+p.Name], 1e-6))
	}
	return w
}
