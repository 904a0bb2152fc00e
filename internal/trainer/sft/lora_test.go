package sft

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/model/load"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
	"github.com/gorlhf/gorlhf/internal/train"
)

func loraConfig(t testing.TB, ds string) Config {
	c := testConfig(t, ds)
	c.Train.LoRA = lora.Config{Rank: 8, Alpha: 16, TargetModules: lora.AllLinear}
	c.Train.Optim.LR = 1e-2
	c.Train.Eval.Dataset, c.Train.Eval.Steps = ds, 3
	return c
}

// TestTrainer_LoRA: a LoRA run trains only the adapters (the base stays
// bit for bit), its loss falls, and it saves a PEFT adapter folder that,
// merged into a fresh copy of the base, gives the trained model's logits.
func TestTrainer_LoRA(t *testing.T) {
	c := loraConfig(t, dataset(t))
	tr := newTrainer(t, c)
	if n := tr.params.Count(); n >= tr.model.Params().Count()/4 {
		t.Fatalf("%d trainable parameters of %d", n, tr.model.Params().Count())
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := c.Train.Ckpt.OutputDir
	rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var evalLoss []float64
	for _, r := range rows {
		if r.Split != "train" {
			evalLoss = append(evalLoss, r.Values["loss"])
		}
	}
	if len(evalLoss) != 3 || !(evalLoss[2] < evalLoss[0]) {
		t.Errorf("eval loss did not fall: %v", evalLoss)
	}
	for _, f := range []string{lora.ConfigFile, lora.WeightsFile, "tokenizer.bin"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
	for _, f := range []string{"model.safetensors", "config.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err == nil {
			t.Errorf("a LoRA run wrote %s", f)
		}
	}
	fresh := testEnv(t).Model
	base := fresh.Params()
	for i, p := range tr.model.Params() {
		if !slices.Equal(p.Tensor.Data, base[i].Tensor.Data) {
			t.Fatalf("base weight %s changed", p.Name)
		}
	}
	f, err := lora.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if f.Config.R != 8 || f.Config.LoraAlpha != 16 || f.Config.BaseModel != load.DefaultModel || len(f.Modules) != 7*5 {
		t.Fatalf("adapter config %+v, %d modules", f.Config, len(f.Modules))
	}
	if err := f.Merge(fresh); err != nil {
		t.Fatal(err)
	}
	ids, pos := []int32{1, 400, 30, 7, 99, 12}, []int32{0, 1, 2, 3, 4, 5}
	want := tr.model.Forward(nil, ids, pos, nil, 1, 6)
	got := fresh.Forward(nil, ids, pos, nil, 1, 6)
	if e := tt.MaxRelErr(got.Data, want.Data, 1e-6); e > 1e-5 {
		t.Fatalf("merged adapter: logits max relative error %.3g", e)
	}
}

// TestTrainer_LoRAResume: a LoRA run stopped and resumed from its
// checkpoint (adapters and their AdamW moments) ends bit-identical to one
// run straight through.
func TestTrainer_LoRAResume(t *testing.T) {
	ds := dataset(t)
	base := func() Config {
		c := loraConfig(t, ds)
		c.Train.Eval.Dataset = ""
		c.Train.Ckpt.SaveSteps = 2
		return c
	}
	full := newTrainer(t, base())
	if err := full.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := base()
	c.Train.StopAtStep = 3
	if err := newTrainer(t, c).Run(context.Background()); !errors.Is(err, train.ErrStopped) {
		t.Fatalf("stop at step 3: %v", err)
	}
	c.Train.StopAtStep, c.Train.Ckpt.LoadEnable = 0, true
	resumed := newTrainer(t, c)
	if got := resumed.Session().Step(); got != 3 {
		t.Fatalf("resumed at step %d, want 3", got)
	}
	if err := resumed.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertSameParams(t, full.params, resumed.params)
}

func TestTrainer_LoRARefusesZeRO(t *testing.T) {
	c := loraConfig(t, dataset(t))
	c.Train.ZeroStage = 2
	_, err := New(c, testEnv(t))
	if err == nil || !strings.Contains(err.Error(), "--ds.zero_stage 2") {
		t.Fatalf("LoRA at ZeRO stage 2: %v", err)
	}
}
