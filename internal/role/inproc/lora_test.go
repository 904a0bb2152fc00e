package inproc

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

func loraSpec() role.Spec {
	return role.Spec{ForwardBatch: 2, Seed: 5, Actor: role.ActorSpec{Adam: adam()}, Reference: true,
		Critic: &role.CriticSpec{Adam: adam()},
		LoRA:   &role.LoRASpec{Rank: 4, Alpha: 8, TargetModules: "all-linear"}}
}

// syncBytes is the payload of a weight sync.
func syncBytes(w role.Weights) int {
	n := 0
	for _, p := range w.Params {
		n += 4 * len(p.Data)
	}
	return n
}

// TestBuild_LoRA: with a LoRA spec the actor and the critic train
// adapters (the critic also its value head); the actor's weight sync
// carries the adapters alone, and the rollout, merging them into its
// base, samples with the log-probs the actor computes for the same
// tokens.
func TestBuild_LoRA(t *testing.T) {
	ctx := context.Background()
	actor := stories(t)
	r := build(t, loraSpec(), actor)
	a := r.Actor.(*Actor)
	if a.m.Adapters == nil || len(a.params) != 2*7*5 {
		t.Fatalf("actor trains %d tensors (adapters %v)", len(a.params), a.m.Adapters != nil)
	}
	c := r.Critic.(*Critic)
	if last := c.params[len(c.params)-1]; last.Name != "score.weight" || len(c.params) != 2*7*5+1 {
		t.Fatalf("critic trains %d tensors, last %s", len(c.params), last.Name)
	}
	// Give the adapters an effect (a fresh B is zero).
	rnd := tensor.NewRand(3)
	for _, tg := range a.m.Adapters.Targets {
		for i := range (*tg.Slot).B.Data {
			(*tg.Slot).B.Data[i] = float32(rnd.NormFloat64()) * 0.2
		}
	}
	w, err := r.Actor.Weights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range w.Params {
		if !strings.Contains(p.Name, ".lora_") {
			t.Fatalf("sync payload holds %s", p.Name)
		}
	}
	w.Version = 1
	if err := r.Rollout.LoadWeights(ctx, w); err != nil {
		t.Fatal(err)
	}
	res, err := r.Rollout.Generate(ctx, role.GenerateRequest{Prompts: []role.Prompt{{Tokens: []int32{1, 403, 27},
		Params: role.SamplingParams{MaxNewTokens: 12, Temperature: 1, Seed: 9}}}})
	if err != nil {
		t.Fatal(err)
	}
	comp := res.Results[0].Completions[0]
	if comp.WeightVersion != 1 {
		t.Fatalf("weight version %d", comp.WeightVersion)
	}
	seqs := role.Sequences{Tokens: [][]int32{append([]int32{1, 403, 27}, comp.Tokens...)}, PromptLens: []int{3}}
	lp, err := r.Actor.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for j, v := range lp.LogProbs[0] {
		worst = math.Max(worst, math.Abs(float64(v-comp.RawLogProbs[j])))
	}
	t.Logf("rollout (merged adapters) vs actor (unmerged) log-probs: max |Δ| %.2g over %d tokens", worst, len(comp.Tokens))
	if worst > 1e-4 {
		t.Fatalf("rollout and actor log-probs differ by %.3g", worst)
	}
	// The reference still reads the untouched base.
	ref := r.Reference.(*Reference)
	fresh := stories(t).Model.Params()
	for i, p := range ref.model.Params() {
		if !slices.Equal(p.Tensor.Data, fresh[i].Tensor.Data) {
			t.Fatalf("reference weight %s changed", p.Name)
		}
	}
}

// TestLoRA_SyncCost measures a weight sync (Actor.Weights, then
// Rollout.LoadWeights) of the adapters against the full weights on
// stories260K: bytes and the median time of 5 rounds.
func TestLoRA_SyncCost(t *testing.T) {
	ctx := context.Background()
	full := loraSpec()
	full.LoRA = nil
	cost := func(spec role.Spec) (int, time.Duration) {
		r := build(t, spec, stories(t))
		var ds []time.Duration
		var bytes int
		for v := int64(1); v <= 5; v++ {
			start := time.Now()
			w, err := r.Actor.Weights(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w.Version = v
			if err := r.Rollout.LoadWeights(ctx, w); err != nil {
				t.Fatal(err)
			}
			ds, bytes = append(ds, time.Since(start)), syncBytes(w)
		}
		slices.Sort(ds)
		return bytes, ds[len(ds)/2]
	}
	lb, lt := cost(loraSpec())
	fb, ft := cost(full)
	t.Logf("weight sync, stories260K: adapters r=4 all-linear %d bytes in %v; full weights %d bytes in %v (median of 5)", lb, lt, fb, ft)
	if lb*3 > fb {
		t.Fatalf("adapter payload %d bytes is not far below the full %d", lb, fb)
	}
}
