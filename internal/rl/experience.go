package rl

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Experience is one rollout batch, grouped by RL meaning (after OpenRLHF's
// Experience). Per-token fields are [B, A] over the response tokens; the G
// samples of a prompt are contiguous rows. Fields a run does not need stay
// nil.
type Experience struct {
	// Trajectory
	Tokens     [][]int32      // B sequences of prompt+response ids
	ActionMask *tensor.Tensor // [B, A] 1 on response tokens that are scored

	// Policy: log π(a|s) under each policy
	LogProbs    *tensor.Tensor // [B, A] π_old, the policy that generated (recomputed by the trainer)
	RefLogProbs *tensor.Tensor // [B, A] π_ref; nil when the KL coefficient is 0

	// Critic
	Values *tensor.Tensor // [B, A] V(s_t) at rollout; nil unless gae

	// Outcome
	Rewards         []float32      // [B] scalar reward per sequence (after RewardNorm and LengthPenalty)
	Scores          []float32      // [B] 0–1 scores for DynamicFilter; nil when the reward source gives none
	ResponseLengths []int          // [B] response tokens, EOS included
	Truncated       []bool         // [B] the response hit max_new_tokens (finish reason "length")
	KL              *tensor.Tensor // [B, A] per-token KL(π_old‖π_ref) used in the reward; nil when off

	// Targets, filled by ComputeAdvantages
	Advantages *tensor.Tensor // [B, A] Â
	Returns    *tensor.Tensor // [B, A] critic targets
}

// Validate checks that every present field has the batch's shape.
func (e *Experience) Validate() error {
	if e.ActionMask == nil || len(e.ActionMask.Shape) != 2 {
		return errors.New("rl: experience: ActionMask must be a [B, A] tensor")
	}
	b := e.ActionMask.Shape[0]
	var errs []error
	tensors := []struct {
		name string
		t    *tensor.Tensor
	}{{"LogProbs", e.LogProbs}, {"RefLogProbs", e.RefLogProbs}, {"Values", e.Values}, {"KL", e.KL}, {"Advantages", e.Advantages}, {"Returns", e.Returns}}
	for _, f := range tensors {
		if f.t != nil && !tensor.SameShape(f.t.Shape, e.ActionMask.Shape) {
			errs = append(errs, fmt.Errorf("rl: experience: %s has shape %v, want %v", f.name, f.t.Shape, e.ActionMask.Shape))
		}
	}
	lengths := []struct {
		name string
		n    int
	}{{"Tokens", len(e.Tokens)}, {"Rewards", len(e.Rewards)}, {"Scores", len(e.Scores)}, {"ResponseLengths", len(e.ResponseLengths)}, {"Truncated", len(e.Truncated)}}
	for _, f := range lengths {
		if f.n != 0 && f.n != b {
			errs = append(errs, fmt.Errorf("rl: experience: %s has %d entries for %d sequences", f.name, f.n, b))
		}
	}
	return errors.Join(errs...)
}
