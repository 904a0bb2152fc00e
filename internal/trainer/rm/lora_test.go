package rm

import (
	"context"
	"testing"

	"github.com/gorlhf/gorlhf/internal/lora"
)

// TestTrainer_LoRA: a LoRA reward model trains its adapters and its
// score head (PEFT's modules_to_save), learns the preferences, and saves
// both in the adapter folder.
func TestTrainer_LoRA(t *testing.T) {
	c := testConfig(t, dataset(t))
	c.Train.LoRA = lora.Config{Rank: 4, Alpha: 8, TargetModules: "q_proj,v_proj"}
	c.Train.Optim.LR = 1e-2
	c.Train.Eval.Dataset, c.Train.Eval.Steps = c.Data.Dataset, 2
	tr := newTrainer(t, c)
	if last := tr.params[len(tr.params)-1]; last.Name != "score.weight" || len(tr.params) != 2*2*5+1 {
		t.Fatalf("%d trainable tensors, last %s", len(tr.params), last.Name)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var evalAcc, evalLoss []float64
	for _, r := range tr.Session().Metrics() {
		if r.Split == "eval" {
			evalAcc, evalLoss = append(evalAcc, r.Values["acc"]), append(evalLoss, r.Values["loss"])
		}
	}
	if len(evalLoss) != 4 || !(evalLoss[3] < evalLoss[0]) || evalAcc[3] < 0.75 {
		t.Fatalf("eval loss %v, acc %v: the LoRA reward model did not learn", evalLoss, evalAcc)
	}
	f, err := lora.Read(c.Train.Ckpt.OutputDir)
	if err != nil {
		t.Fatal(err)
	}
	if f.Config.TaskType != "SEQ_CLS" || len(f.Modules) != 10 {
		t.Fatalf("adapter %+v with %d modules", f.Config, len(f.Modules))
	}
	if _, ok := f.Saved["score.weight"]; !ok {
		t.Fatal("the score head is not in the adapter file")
	}
}
