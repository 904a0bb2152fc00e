package dpo

import (
	"context"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/lora"
)

// TestTrainer_LoRA: DPO through adapters on every linear map learns the
// preferences while the reference and the policy's base stay unchanged.
func TestTrainer_LoRA(t *testing.T) {
	c := testConfig(t, dataset(t))
	c.Train.LoRA = lora.Config{Rank: 8, Alpha: 16, TargetModules: lora.AllLinear}
	c.Train.Optim.LR = 1e-2
	c.Train.Eval.Dataset, c.Train.Eval.Steps = c.Data.Dataset, 3
	tr, ref := newTrainer(t, c)
	before, base := refSnapshot(ref), refSnapshot(tr.policy)
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var acc, margin []float64
	for _, r := range tr.Session().Metrics() {
		if r.Split == "eval" {
			acc, margin = append(acc, r.Values["acc"]), append(margin, r.Values["margin"])
		}
	}
	if len(acc) != 3 || acc[0] != 0 || acc[2] < 0.75 || !(margin[2] > 0) {
		t.Fatalf("eval reward accuracy %v, margins %v: LoRA DPO did not learn", acc, margin)
	}
	if !slices.EqualFunc(before, refSnapshot(ref), slices.Equal) || !slices.EqualFunc(base, refSnapshot(tr.policy), slices.Equal) {
		t.Fatal("the reference or the policy's base weights changed")
	}
}
