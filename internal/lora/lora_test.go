package lora

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// tinyLlama is a small GQA model with q/k/v biases and random weights.
func tinyLlama(t testing.TB, seed uint64) *llama.Model {
	t.Helper()
	m, err := llama.New(llama.Config{VocabSize: 19, Hidden: 8, Intermediate: 12, Layers: 2, Heads: 2, KVHeads: 1,
		RMSNormEps: 1e-5, AttentionBias: true})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(tensor.NewRand(seed))
	scaleUp(m.Params())
	return m
}

func tinyGPT2(t testing.TB, seed uint64) *gpt2.Model {
	t.Helper()
	m, err := gpt2.New(gpt2.Config{VocabSize: 17, MaxPositions: 8, Hidden: 8, Layers: 2, Heads: 2, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(tensor.NewRand(seed))
	scaleUp(m.Params())
	return m
}

// scaleUp makes the 0.02-std init larger, so that outputs depend on every
// weight visibly (finite differences see them).
func scaleUp(ps nn.Params) {
	for _, p := range ps {
		if len(p.Tensor.Shape) == 2 {
			for i := range p.Tensor.Data {
				p.Tensor.Data[i] *= 10
			}
		}
	}
}

// randomB gives every adapter a random B (a fresh one is zero, which
// would hide A's gradient and the adapter's effect).
func randomB(a *Adapters, seed uint64) {
	r := tensor.NewRand(seed)
	for _, t := range a.Targets {
		for i := range (*t.Slot).B.Data {
			(*t.Slot).B.Data[i] = float32(r.NormFloat64()) * 0.3
		}
	}
}

func input(b, t, vocab int) (ids, pos []int32) {
	for i := 0; i < b*t; i++ {
		ids = append(ids, int32((i*7+3)%vocab))
		pos = append(pos, int32(i%t))
	}
	return ids, pos
}

func TestAttach_FreezesBaseAndListsAdapters(t *testing.T) {
	m := tinyLlama(t, 1)
	before := m.Forward(nil, []int32{1, 2, 3}, []int32{0, 1, 2}, nil, 1, 3)
	a, err := Attach(m, Config{Rank: 2, Alpha: 4, TargetModules: "q_proj, v_proj,down_proj"}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Modules(); !slices.Equal(got, []string{"down_proj", "q_proj", "v_proj"}) {
		t.Fatalf("modules %v", got)
	}
	ps := a.Params()
	if len(ps) != 2*3*2 || ps[0].Name != "model.layers.0.self_attn.q_proj.lora_A.weight" ||
		ps[1].Name != "model.layers.0.self_attn.q_proj.lora_B.weight" {
		t.Fatalf("params %d, first %s %s", len(ps), ps[0].Name, ps[1].Name)
	}
	if err := ps.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		if p.Tensor.RequiresGrad {
			t.Fatalf("base parameter %s still trainable", p.Name)
		}
	}
	// A fresh adapter (B = 0) leaves the output unchanged, bit for bit.
	after := m.Forward(nil, []int32{1, 2, 3}, []int32{0, 1, 2}, nil, 1, 3)
	if !slices.Equal(before.Data, after.Data) {
		t.Fatal("a fresh adapter changed the output")
	}
	// Only adapters get gradients.
	randomB(a, 3)
	tp := tensor.NewTape()
	tp.Backward(tensor.CrossEntropy(tp, m.Forward(tp, []int32{1, 2, 3}, []int32{0, 1, 2}, nil, 1, 3), []int32{2, 3, 4}))
	for _, p := range m.Params() {
		if p.Tensor.Grad != nil {
			t.Fatalf("frozen %s got a gradient", p.Name)
		}
	}
	for _, p := range ps {
		if p.Tensor.Grad == nil {
			t.Fatalf("adapter %s got no gradient", p.Name)
		}
	}
	// A's init is PEFT's Kaiming-uniform(a=√5): |A| ≤ 1/√in.
	for _, p := range ps[:1] {
		for _, v := range p.Tensor.Data {
			if v > 1/float32(2.8284) || v < -1/float32(2.8284) {
				t.Fatalf("A value %g outside ±1/√8", v)
			}
		}
	}
}

func TestAttach_Errors(t *testing.T) {
	m := tinyLlama(t, 1)
	_, err := Attach(m, Config{Rank: 2, Alpha: 4, TargetModules: "q_proj,c_attn"}, 1)
	if err == nil || !strings.Contains(err.Error(), `"c_attn"`) || !strings.Contains(err.Error(), "gate_proj") {
		t.Fatalf("unknown module: %v", err)
	}
	if _, err := Attach(m, Config{Rank: 2, Alpha: 4, TargetModules: AllLinear}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(m, Config{Rank: 2, Alpha: 4, TargetModules: AllLinear}, 1); err == nil {
		t.Fatal("second adapter on the same map accepted")
	}
	bad := Config{Rank: 2, Alpha: -1, Dropout: 1, TargetModules: " "}
	if err := bad.Validate("ds.lora"); err == nil || !strings.Contains(err.Error(), "--ds.lora.alpha") ||
		!strings.Contains(err.Error(), "--ds.lora.dropout") || !strings.Contains(err.Error(), "--ds.lora.target_modules") {
		t.Fatalf("validate: %v", err)
	}
}

// TestLoRA_GradCheck checks the adapters' backward pass (A, B and the
// input path through frozen base maps) by finite differences, on Llama
// (Linear) and GPT-2 (Conv1D) blocks.
func TestLoRA_GradCheck(t *testing.T) {
	for _, name := range []string{"llama", "gpt2"} {
		t.Run(name, func(t *testing.T) {
			var m model.CausalLM
			if name == "llama" {
				m = tinyLlama(t, 2)
			} else {
				m = tinyGPT2(t, 2)
			}
			a, err := Attach(m, Config{Rank: 2, Alpha: 3, TargetModules: AllLinear}, 5)
			if err != nil {
				t.Fatal(err)
			}
			randomB(a, 6)
			ids, pos := input(2, 3, m.Dims().Vocab)
			var in []*tensor.Tensor
			for _, p := range a.Params() {
				in = append(in, p.Tensor)
			}
			f := func(tp *tensor.Tape) *tensor.Tensor { return m.Forward(tp, ids, pos, nil, 2, 3) }
			if err := tt.GradCheck(f, in, 1e-2, 2e-2); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMerge_MatchesAdapters: merging every adapter into its base weight
// (Merge, and File.Merge of the saved folder into a fresh copy of the
// base) gives the logits the adapted model computes.
func TestMerge_MatchesAdapters(t *testing.T) {
	for _, name := range []string{"llama", "gpt2"} {
		t.Run(name, func(t *testing.T) {
			var m, base model.CausalLM
			if name == "llama" {
				m, base = tinyLlama(t, 3), tinyLlama(t, 3)
			} else {
				m, base = tinyGPT2(t, 3), tinyGPT2(t, 3)
			}
			a, err := Attach(m, Config{Rank: 3, Alpha: 5, TargetModules: AllLinear}, 8)
			if err != nil {
				t.Fatal(err)
			}
			randomB(a, 9)
			ids, pos := input(2, 5, m.Dims().Vocab)
			want := m.Forward(nil, ids, pos, nil, 2, 5)

			dir := t.TempDir()
			if err := a.Save(dir, "tiny", map[string][]byte{"tokenizer.json": []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			f, err := Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			if f.Config.FanInFanOut != (name == "gpt2") || f.Config.R != 3 || f.Config.LoraAlpha != 5 || f.Config.TaskType != "CAUSAL_LM" {
				t.Fatalf("config %+v", f.Config)
			}
			if err := f.Merge(base); err != nil {
				t.Fatal(err)
			}
			got := base.Forward(nil, ids, pos, nil, 2, 5)
			if e := tt.MaxRelErr(got.Data, want.Data, 1e-6); e > 1e-5 {
				t.Fatalf("merged file: logits max relative error %.3g", e)
			}
			a.Merge()
			got = m.Forward(nil, ids, pos, nil, 2, 5)
			if e := tt.MaxRelErr(got.Data, want.Data, 1e-6); e > 1e-5 {
				t.Fatalf("merged in place: logits max relative error %.3g", e)
			}
			if !slices.Equal(got.Data, base.Forward(nil, ids, pos, nil, 2, 5).Data) {
				t.Fatal("in-place merge and file merge differ")
			}
		})
	}
}

// TestMerge_BadBase: an adapter saved for another base names the tensor
// and both shapes, and leaves the model unchanged.
func TestMerge_BadBase(t *testing.T) {
	m := tinyLlama(t, 4)
	a, err := Attach(m, Config{Rank: 2, Alpha: 4, TargetModules: "q_proj"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	randomB(a, 2)
	dir := t.TempDir()
	if err := a.Save(dir, "tiny", nil); err != nil {
		t.Fatal(err)
	}
	f, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := llama.New(llama.Config{VocabSize: 19, Hidden: 12, Intermediate: 12, Layers: 2, Heads: 2, RMSNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	other.Init(tensor.NewRand(1))
	before := other.Params()[1].Tensor.Clone()
	err = f.Merge(other)
	if err == nil || !strings.Contains(err.Error(), "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight has shape [2 8]") ||
		!strings.Contains(err.Error(), "[12 12]") {
		t.Fatalf("mismatch: %v", err)
	}
	if !slices.Equal(before.Data, other.Params()[1].Tensor.Data) {
		t.Fatal("a refused merge changed the model")
	}
	g := tinyGPT2(t, 1)
	if err := f.Merge(g); err == nil || !strings.Contains(err.Error(), "does not have") {
		t.Fatalf("gpt2 base: %v", err)
	}
}

// TestScoreModel_SavesHead: a score model trains its head whole (PEFT's
// modules_to_save), saved as base_model.model.score.weight.
func TestScoreModel_SavesHead(t *testing.T) {
	sm := head.NewScoreModel(tinyLlama(t, 5), 8)
	a, err := Attach(sm, Config{Rank: 2, Alpha: 4, TargetModules: AllLinear}, 1, "score")
	if err != nil {
		t.Fatal(err)
	}
	ps := a.Params()
	if last := ps[len(ps)-1]; last.Name != "score.weight" || !last.Tensor.RequiresGrad {
		t.Fatalf("last trainable %s", last.Name)
	}
	for i := range sm.Head.Weight.Data {
		sm.Head.Weight.Data[i] = 0.5
	}
	dir := t.TempDir()
	if err := a.Save(dir, "tiny", nil); err != nil {
		t.Fatal(err)
	}
	f, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.Config.TaskType != "SEQ_CLS" || !slices.Equal(f.Config.ModulesToSave, []string{"score"}) {
		t.Fatalf("config %+v", f.Config)
	}
	if _, ok := f.Saved["score.weight"]; !ok {
		t.Fatal("score.weight not saved")
	}
	fresh := head.NewScoreModel(tinyLlama(t, 5), 8)
	if err := f.Merge(fresh); err != nil {
		t.Fatal(err)
	}
	if fresh.Head.Weight.Data[3] != 0.5 {
		t.Fatal("saved head not restored")
	}
}

func TestRead_Refuses(t *testing.T) {
	m := tinyLlama(t, 4)
	a, err := Attach(m, Config{Rank: 2, Alpha: 4, TargetModules: "q_proj"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := a.Save(dir, "tiny", nil); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, ConfigFile)
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), `"use_dora": false`, `"use_dora": true`, 1)), 0o644)
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "DoRA") {
		t.Fatalf("dora: %v", err)
	}
	if _, err := Read(t.TempDir()); err == nil {
		t.Fatal("empty folder read")
	}
}

// TestMerged_SyncPayload: the adapters alone, merged into a separate
// copy of the base, give the adapted model's logits, and the base copy
// is not changed by the merge.
func TestMerged_SyncPayload(t *testing.T) {
	for _, name := range []string{"llama", "gpt2"} {
		t.Run(name, func(t *testing.T) {
			var m, base model.CausalLM
			if name == "llama" {
				m, base = tinyLlama(t, 3), tinyLlama(t, 3)
			} else {
				m, base = tinyGPT2(t, 3), tinyGPT2(t, 3)
			}
			a, err := Attach(m, Config{Rank: 2, Alpha: 5, TargetModules: AllLinear}, 8)
			if err != nil {
				t.Fatal(err)
			}
			randomB(a, 9)
			before := base.Params()[3].Tensor.Clone()
			ps, err := Merged(base, a.Params(), 2.5)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(before.Data, base.Params()[3].Tensor.Data) {
				t.Fatal("Merged changed the base")
			}
			for i, p := range base.Params() {
				copy(p.Tensor.Data, ps[i].Tensor.Data)
			}
			ids, pos := input(2, 5, m.Dims().Vocab)
			want, got := m.Forward(nil, ids, pos, nil, 2, 5), base.Forward(nil, ids, pos, nil, 2, 5)
			if e := tt.MaxRelErr(got.Data, want.Data, 1e-6); e > 1e-5 {
				t.Fatalf("logits max relative error %.3g", e)
			}
			if !IsAdapterPayload([]string{a.Params()[0].Name}) || IsAdapterPayload([]string{"model.norm.weight"}) {
				t.Fatal("IsAdapterPayload")
			}
			bad := append(nn.Params{}, a.Params()...)
			bad[0] = nn.Param{Name: bad[0].Name, Tensor: tensor.New(2, 3)}
			if _, err := Merged(base, bad, 2.5); err == nil || !strings.Contains(err.Error(), "do not fit") {
				t.Fatalf("bad payload: %v", err)
			}
		})
	}
}
