package placement

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/train"
)

// ragged returns n random stories260K sequences: a BOS then up to 7
// prompt tokens, and 1–20 response tokens.
func ragged(seed uint64, n int) role.Sequences {
	r := rand.New(rand.NewPCG(seed, 1))
	var s role.Sequences
	for range n {
		p, a := 1+r.IntN(8), 1+r.IntN(20)
		toks := []int32{1}
		for len(toks) < p+a {
			toks = append(toks, int32(3+r.IntN(500)))
		}
		s.Tokens, s.PromptLens = append(s.Tokens, toks), append(s.PromptLens, p)
	}
	return s
}

// rows returns random per-token values shaped like s's responses.
func rows(seed uint64, s role.Sequences) role.PerToken {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make(role.PerToken, s.Len())
	for i := range out {
		out[i] = make([]float32, s.ResponseLen(i))
		for j := range out[i] {
			out[i][j] = float32(r.NormFloat64())
		}
	}
	return out
}

// sameRows fails unless got and want hold the same bits.
func sameRows(t *testing.T, what string, got, want role.PerToken) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s: row %d has %d values, want %d", what, i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
				t.Fatalf("%s: row %d value %d = %v, want %v", what, i, j, got[i][j], want[i][j])
			}
		}
	}
}

// must(f())(t) is f's value, or t fails with f's error.
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// generateRequest samples, greedily and at random, with stop tokens.
func generateRequest() role.GenerateRequest {
	return role.GenerateRequest{Prompts: []role.Prompt{
		{ID: "a", Tokens: []int32{1, 403, 29}, Params: role.SamplingParams{N: 2, MaxNewTokens: 12, Temperature: 0.9, TopK: 40, Seed: 7}},
		{ID: "b", Tokens: []int32{1, 88}, Params: role.SamplingParams{MaxNewTokens: 8}},
		{ID: "c", Tokens: []int32{1, 403}, Params: role.SamplingParams{N: 2, MaxNewTokens: 10, Temperature: 1, TopP: 0.9, StopTokenIDs: []int32{13}}},
	}}
}

// sameGenerate runs req on both engines: equal results, every completion
// from weight version v.
func sameGenerate(t *testing.T, got, want role.Rollout, v int64) role.GenerateResult {
	t.Helper()
	ctx := context.Background()
	req := generateRequest()
	w := must(want.Generate(ctx, req))(t)
	g := must(got.Generate(ctx, req))(t)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("generate:\n got %+v\nwant %+v", g, w)
	}
	if len(w.Results) != len(req.Prompts) {
		t.Fatalf("%d generations for %d prompts", len(w.Results), len(req.Prompts))
	}
	for _, r := range w.Results {
		for _, c := range r.Completions {
			if c.WeightVersion != v || len(c.Tokens) == 0 {
				t.Fatalf("a completion of %d tokens from weight version %d, want version %d", len(c.Tokens), c.WeightVersion, v)
			}
		}
	}
	return w
}

// TestStartServe_MatchesInProcess places a run over a Slurm-style plan
// with one worker goroutine per role and compares every call with the
// same call on roles built in this process, bit for bit.
func TestStartServe_MatchesInProcess(t *testing.T) {
	ctx := context.Background()
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{Critic: true, Reference: true})
	if plan.WorldSize != 5 {
		t.Fatalf("plan of %d processes, want 5 (driver, actor, ref, critic, rollout):\n%s", plan.WorldSize, plan)
	}
	s, workers := startRun(t, plan)
	placed := s.placed
	local := must(inproc.Build(testSpec(), train.Setup{Bundle: must(load.Open(load.DefaultModel, load.OpenOptions{}))(t)}, nil))(t)
	t.Cleanup(func() { local.Close() })

	if !placed.Overlap || placed.Sync == nil || placed.MaxPositions != 0 {
		t.Fatalf("placed: Overlap %v, Sync set %v, MaxPositions %d; want true, true, 0", placed.Overlap, placed.Sync != nil, placed.MaxPositions)
	}
	set := placed.Set
	if set.Actor == nil || set.Reference == nil || set.Critic == nil || set.Rollout == nil || set.Reward == nil {
		t.Fatalf("placed set has a nil role: %+v", set)
	}
	for name, r := range map[string]any{"actor": set.Actor, "ref": set.Reference, "critic": set.Critic, "rollout": set.Rollout} {
		if strings.Contains(fmt.Sprintf("%T", r), "inproc") {
			t.Fatalf("the %s is in the driver's process (%T), not a worker's", name, r)
		}
	}
	if _, ok := set.Reward.(*inproc.Reward); !ok {
		t.Fatalf("the rule reward is %T, want the driver's own *inproc.Reward", set.Reward)
	}

	seqs := ragged(1, 6)
	t.Run("LogProbs", func(t *testing.T) {
		req := role.LogProbsRequest{Seqs: seqs}
		sameRows(t, "actor", must(set.Actor.LogProbs(ctx, req))(t).LogProbs, must(local.Actor.LogProbs(ctx, req))(t).LogProbs)
		sameRows(t, "reference", must(set.Reference.LogProbs(ctx, req))(t).LogProbs, must(local.Reference.LogProbs(ctx, req))(t).LogProbs)
	})
	t.Run("Values", func(t *testing.T) {
		req := role.ValuesRequest{Seqs: seqs}
		sameRows(t, "values", must(set.Critic.Values(ctx, req))(t).Values, must(local.Critic.Values(ctx, req))(t).Values)
	})
	t.Run("Score", func(t *testing.T) {
		req := role.ScoreRequest{Samples: []grade.Sample{{Prompt: "Once", Response: " upon a time there was a dog"}, {Prompt: "Tom", Response: " ran"}}}
		got, want := must(set.Reward.Score(ctx, req))(t), must(local.Reward.Score(ctx, req))(t)
		if !reflect.DeepEqual(got, want) || len(got.Results) != 2 || got.Results[0].Reward == got.Results[1].Reward {
			t.Fatalf("score:\n got %+v\nwant %+v", got, want)
		}
	})
	var before role.GenerateResult
	t.Run("Generate", func(t *testing.T) { before = sameGenerate(t, set.Rollout, local.Rollout, 0) })
	t.Run("TrainStep", func(t *testing.T) { trainSteps(t, set, local.Set, seqs) })
	t.Run("WeightsThroughDriver", func(t *testing.T) {
		got, want := must(set.Actor.Weights(ctx))(t), must(local.Actor.Weights(ctx))(t)
		sameParamsByName(t, "actor weights", got.Params, want.Params)
	})
	t.Run("Sync", func(t *testing.T) {
		w := must(local.Actor.Weights(ctx))(t)
		w.Version = 1
		if err := local.Rollout.LoadWeights(ctx, w); err != nil {
			t.Fatal(err)
		}
		if err := placed.Sync(ctx, set.Actor, set.Rollout, 1); err != nil {
			t.Fatal(err)
		}
		after := sameGenerate(t, set.Rollout, local.Rollout, 1)
		if before.Results != nil && reflect.DeepEqual(after.Results[0].Completions[0].RawLogProbs, before.Results[0].Completions[0].RawLogProbs) {
			t.Fatal("the trained weights generate what the initial ones did: the sync moved nothing")
		}
	})

	// Close says "bye" on every watch: each worker's Serve returns nil.
	start := time.Now()
	if err := placed.Close(); err != nil {
		t.Fatal(err)
	}
	for rank, w := range workers {
		if err := w.wait(t, 15*time.Second); err != nil {
			t.Errorf("worker rank %d: Serve returned %v after the driver closed the run, want nil", rank, err)
		}
	}
	t.Logf("Close and every worker's exit: %v", time.Since(start))
	if context.Cause(s.ctx) == nil || !errors.Is(context.Cause(s.ctx), context.Canceled) {
		t.Fatalf("after Close the run's context has cause %v, want context.Canceled", context.Cause(s.ctx))
	}
}

// trainSteps runs two actor steps (with a KL and an entropy term) and two
// critic steps on both sets: equal results, then equal log-probs and
// values.
func trainSteps(t *testing.T, got, want role.Set, seqs role.Sequences) {
	ctx := context.Background()
	old := must(want.Actor.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs}))(t).LogProbs
	ref := must(want.Reference.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs}))(t).LogProbs
	vals := must(want.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t).Values
	adv, ret := rows(3, seqs), rows(4, seqs)
	as := role.ActorStep{Loss: rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig(), KLCoef: 0.05, KLEstimator: rl.K3, EntropyCoef: 0.01},
		LR: 1e-3, MaxNorm: 1}
	cs := role.CriticStep{Loss: rl.DefaultValueLossConfig(), LR: 1e-3, MaxNorm: 1}
	for _, idx := range [][]int{{0, 1, 2}, {3, 4, 5}} {
		as.MicroBatches = append(as.MicroBatches, role.ActorMicroBatch{Seqs: seqs.Select(idx), OldLogProbs: old.Select(idx),
			Advantages: adv.Select(idx), RefLogProbs: ref.Select(idx)})
		cs.MicroBatches = append(cs.MicroBatches, role.CriticMicroBatch{Seqs: seqs.Select(idx), OldValues: vals.Select(idx), Returns: ret.Select(idx)})
	}
	for i := range 2 {
		g, w := must(got.Actor.TrainStep(ctx, as))(t), must(want.Actor.TrainStep(ctx, as))(t)
		if g != w || w.Skipped || w.Tokens == 0 {
			t.Fatalf("actor step %d:\n got %+v\nwant %+v", i, g, w)
		}
		gc, wc := must(got.Critic.TrainStep(ctx, cs))(t), must(want.Critic.TrainStep(ctx, cs))(t)
		if gc != wc || wc.Skipped || wc.Tokens == 0 {
			t.Fatalf("critic step %d:\n got %+v\nwant %+v", i, gc, wc)
		}
	}
	req := role.LogProbsRequest{Seqs: seqs}
	after := must(want.Actor.LogProbs(ctx, req))(t).LogProbs
	sameRows(t, "actor after training", must(got.Actor.LogProbs(ctx, req))(t).LogProbs, after)
	if reflect.DeepEqual(after, old) {
		t.Fatal("two actor steps changed no log-prob")
	}
	sameRows(t, "values after training", must(got.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t).Values,
		must(want.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t).Values)
	// The reference stays frozen on both sides.
	sameRows(t, "reference after training", must(got.Reference.LogProbs(ctx, req))(t).LogProbs, ref)
}

// TestStart_Inproc: the inproc launcher builds every role in this process
// and opens nothing.
func TestStart_Inproc(t *testing.T) {
	plan, err := launch.NewPlan(launch.DefaultConfig(), launch.Needs{Critic: true, Reference: true})
	if err != nil {
		t.Fatal(err)
	}
	p, ctx, err := Start(context.Background(), Options{Plan: plan, Build: build})
	if err != nil {
		t.Fatal(err)
	}
	r := must(build(inproc.AllRoles()))(t)
	r.Close()
	if p.Overlap || p.Sync != nil || p.MaxPositions != r.MaxPositions() || ctx.Err() != nil {
		t.Fatalf("inproc: Overlap %v, Sync set %v, MaxPositions %d (want %d), ctx %v", p.Overlap, p.Sync != nil, p.MaxPositions, r.MaxPositions(), ctx.Err())
	}
	if _, ok := p.Set.Actor.(*inproc.Actor); !ok || p.Set.Reference == nil || p.Set.Critic == nil || p.Set.Reward == nil || p.Set.Rollout == nil {
		t.Fatalf("inproc set: %+v", p.Set)
	}
	boom := errors.New("boom")
	if got := p.Explain(boom); got != boom {
		t.Fatalf("Explain in process: %v", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Fatal("Close left the run's context alive")
	}
}
