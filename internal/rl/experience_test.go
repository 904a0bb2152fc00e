package rl

import (
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

func TestExperience_Validate(t *testing.T) {
	ok := Experience{ActionMask: tensor.New(2, 3), LogProbs: tensor.New(2, 3), Rewards: []float32{1, 2}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.Values, bad.Truncated = tensor.New(3, 2), []bool{true}
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "Values has shape [3 2]") || !strings.Contains(err.Error(), "Truncated has 1 entries") {
		t.Fatalf("error %v", err)
	}
	if (&Experience{}).Validate() == nil {
		t.Error("an experience without a mask validated")
	}
}
