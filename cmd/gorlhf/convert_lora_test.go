package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestConvert_MergeLoRA: `train sft --ds.lora.rank` writes a PEFT adapter
// folder; `convert --merge-lora` merges it into the base as a whole HF
// folder whose logits are the adapted model's; a base of other shapes is
// refused with the tensor and both shapes, and nothing is written.
func TestConvert_MergeLoRA(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	runDir, out := filepath.Join(dir, "run"), filepath.Join(dir, "merged")
	args := append(sftArgs(storiesData(t), runDir), "--train.max_steps", "3", "--ckpt.save_steps", "-1",
		"--adam.lr", "1e-2", "--ds.lora.rank", "4", "--ds.lora.alpha", "8", "--ds.lora.target_modules", "q_proj,v_proj,down_proj")
	if err := runTrain(ctx, args); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"convert", "--model", load.DefaultModel, "--merge-lora", runDir, "--out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	merged, err := load.Load(out, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The adapted model: the base with the adapters attached unmerged.
	base, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := lora.Read(runDir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := lora.Attach(base.Model, lora.Config{Rank: 4, Alpha: 8, TargetModules: strings.Join(f.Config.TargetModules, ",")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range a.Targets {
		copy((*tg.Slot).A.Data, f.A[tg.Module].Data)
		copy((*tg.Slot).B.Data, f.B[tg.Module].Data)
	}
	ids, pos := []int32{1, 403, 27, 311, 9, 66, 120}, []int32{0, 1, 2, 3, 4, 5, 6}
	want := base.Model.Forward(nil, ids, pos, nil, 1, 7)
	got := merged.Model.Forward(nil, ids, pos, nil, 1, 7)
	if e := tt.MaxRelErr(got.Data, want.Data, 1e-6); e > 1e-5 {
		t.Fatalf("merged folder: logits max relative error %.3g", e)
	}
	if slices.Equal(merged.Params().Find("model.layers.0.self_attn.q_proj.weight").Data,
		base.Params().Find("model.layers.0.self_attn.q_proj.weight").Data) {
		t.Fatal("q_proj did not change")
	}

	// A base of other shapes: refused, nothing written.
	other := filepath.Join(dir, "other")
	m, err := llama.New(llama.Config{VocabSize: 512, Hidden: 32, Intermediate: 64, Layers: 5, Heads: 4, RMSNormEps: 1e-5, MaxPositions: 2048})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(tensor.NewRand(1))
	cfg := []byte(`{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 512, "hidden_size": 32,
		"intermediate_size": 64, "num_hidden_layers": 5, "num_attention_heads": 4, "rms_norm_eps": 1e-5}`)
	if err := load.Save(other, m, cfg, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	err = run(ctx, []string{"convert", "--model", other, "--merge-lora", runDir, "--out", bad}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight has shape [4 64]") ||
		!strings.Contains(err.Error(), "[32 32]") {
		t.Fatalf("mismatched base: %v", err)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Fatal("a refused merge wrote its output folder")
	}
}

// TestTrain_LoRARefusesRanks: LoRA on data-parallel ranks or at a ZeRO
// stage is refused before anything starts, naming the flags.
func TestTrain_LoRARefusesRanks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--launcher", "local", "--model.num_workers_per_node", "2"}, "--launcher inproc"},
		{[]string{"--ds.zero_stage", "1"}, "--ds.zero_stage 1"},
	} {
		args := append(sftArgs(storiesData(t), filepath.Join(dir, "run")), append([]string{"--ds.lora.rank", "4"}, c.flags...)...)
		err := runTrain(ctx, args)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--ds.lora.rank 4") {
			t.Fatalf("%v: %v", c.flags, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "run", "train.log")); err == nil {
			t.Fatal("a refused run started")
		}
	}
}
