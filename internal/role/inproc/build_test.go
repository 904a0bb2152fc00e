package inproc

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/train"
)

// stories is the embedded stories260K with its tokenizer, as the command
// line loads an actor.
func stories(t *testing.T) train.Setup {
	t.Helper()
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return train.Setup{Bundle: b}
}

func loadRef(ref string) (*load.Loaded, error) { return load.Load(ref, load.Options{}) }

func adam() role.Adam { return role.Adam(optim.DefaultConfig()) }

// build makes the roles of spec (sent through JSON first, as a worker
// would receive it) and closes them when the test ends.
func build(t *testing.T, spec role.Spec, actor train.Setup) *Roles {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var got role.Spec
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	r, err := Build(got, actor, loadRef)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestBuild_Placement(t *testing.T) {
	ctx := context.Background()
	actor := stories(t)
	spec := role.Spec{ForwardBatch: 2, Seed: 5, Actor: role.ActorSpec{Adam: adam()}, Reference: true,
		Critic: &role.CriticSpec{Adam: adam()}, Reward: &role.RewardSpec{Rule: grade.RuleConfig{Kind: grade.RuleExact}}}
	r := build(t, spec, actor)
	if r.Actor == nil || r.Reference == nil || r.Critic == nil || r.Reward == nil || r.Rollout == nil {
		t.Fatalf("roles %+v: want all five", r.Set)
	}
	if r.MaxPositions() < 0 {
		t.Fatalf("max positions %d", r.MaxPositions())
	}
	// The reference reads the loaded weights; the actor trains a copy.
	if ref := r.Reference.(*Reference); ref.model != actor.Model {
		t.Fatal("the reference does not read the loaded model")
	}
	if a := r.Actor.(*Actor); a.m.Module == actor.Model {
		t.Fatal("the actor trains the weights the reference reads")
	}
	w, err := r.Actor.Weights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := actor.Model.Params()
	for i, p := range w.Params {
		if p.Name != base[i].Name || !slices.Equal(p.Data, base[i].Tensor.Data) {
			t.Fatalf("actor parameter %s does not start from the loaded %s", p.Name, base[i].Name)
		}
	}
	// The critic's fresh head is drawn from the spec's seed.
	head := func(r *Roles) []float32 { return r.Critic.(*Critic).model.Head.Weight.Data }
	again := build(t, spec, stories(t))
	spec.Seed = 6
	other := build(t, spec, stories(t))
	if !slices.Equal(head(r), head(again)) || slices.Equal(head(r), head(other)) {
		t.Fatal("the critic's value head does not follow the seed")
	}
	// The rollout generates from the prompt with the initial policy.
	res, err := r.Rollout.Generate(ctx, role.GenerateRequest{Prompts: []role.Prompt{{ID: "a", Tokens: []int32{1, 403},
		Params: role.SamplingParams{N: 2, MaxNewTokens: 5, Temperature: 1, Seed: 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	g := res.Results[0]
	if g.ID != "a" || g.PromptTokens != 2 || len(g.Completions) != 2 {
		t.Fatalf("generation %+v", g)
	}
	for _, c := range g.Completions {
		if len(c.Tokens) == 0 || len(c.RawLogProbs) != len(c.Tokens) || c.WeightVersion != 0 ||
			(c.FinishReason != role.FinishStop && c.FinishReason != role.FinishLength) {
			t.Fatalf("completion %+v", c)
		}
	}
	// Publishing the actor's weights bumps the version the rollout reports.
	w.Version = 1
	if err := r.Rollout.LoadWeights(ctx, w); err != nil {
		t.Fatal(err)
	}
	res, err = r.Rollout.Generate(ctx, role.GenerateRequest{Prompts: []role.Prompt{{Tokens: []int32{1}, Params: role.SamplingParams{MaxNewTokens: 2}}}})
	if err != nil || res.Results[0].Completions[0].WeightVersion != 1 {
		t.Fatalf("after LoadWeights: %+v, %v", res, err)
	}
	sr, err := r.Reward.Score(ctx, role.ScoreRequest{Samples: []grade.Sample{{Response: " 42 ", Label: "42"}, {Response: "41", Label: "42"}}})
	if err != nil || sr.Results[0].Reward != 1 || sr.Results[1].Reward != 0 {
		t.Fatalf("exact grader: %+v, %v", sr, err)
	}
}

func TestBuild_Minimal(t *testing.T) {
	// Without a reference the actor trains the loaded model itself; no
	// critic, no reward role (an environment gives the rewards).
	actor := stories(t)
	r := build(t, role.Spec{Actor: role.ActorSpec{Adam: adam()}}, actor)
	if r.Reference != nil || r.Critic != nil || r.Reward != nil || r.Actor == nil || r.Rollout == nil {
		t.Fatalf("roles %+v: want actor and rollout only", r.Set)
	}
	if a := r.Actor.(*Actor); a.m.Module != actor.Model {
		t.Fatal("the actor copied the model although nothing else reads it")
	}
}

func TestBuild_Mix(t *testing.T) {
	// A rule grader and a remote server (a math grader on loopback),
	// weighed 2 and 0.5, scored from the rule.
	math, err := grade.NewRule(grade.RuleConfig{Kind: grade.RuleMath})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := reward.NewServer(math, reward.DefaultServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	spec := role.Spec{Actor: role.ActorSpec{Adam: adam()}, Reward: &role.RewardSpec{
		Rule:       grade.RuleConfig{Kind: grade.RuleLength, Length: grade.LengthConfig{Target: 4, Unit: grade.UnitChars}},
		RemoteURLs: []string{hs.URL + reward.DefaultPath}, Mix: map[string]float64{role.PartRule: 2, role.PartRemote: 0.5},
		ScoreFrom: role.PartRule}}
	r := build(t, spec, stories(t))
	res, err := r.Reward.Score(context.Background(), role.ScoreRequest{Samples: []grade.Sample{{Response: "#### 7", Label: "7"}, {Response: "12", Label: "7"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ rule, remote float64 }{{0.5, 1}, {0.5, 0}} {
		got := res.Results[i]
		if got.Extra[role.PartRule] != want.rule || got.Extra[role.PartRemote] != want.remote ||
			got.Reward != 2*want.rule+0.5*want.remote || got.Score != want.rule {
			t.Errorf("sample %d: %+v, want rule %g and remote %g mixed 2:0.5, score from the rule", i, got, want.rule, want.remote)
		}
	}
}

func TestBuild_Errors(t *testing.T) {
	actor := stories(t)
	rm := role.Spec{Actor: role.ActorSpec{Adam: adam()}, Reward: &role.RewardSpec{Model: load.DefaultModel, MaxLen: 64}}
	for _, tc := range []struct {
		name  string
		spec  role.Spec
		actor train.Setup
		open  Loader
		want  string
	}{
		{"Spec", role.Spec{ForwardBatch: -1}, actor, loadRef, "must be ≥ 0"},
		{"NoActor", role.Spec{}, train.Setup{}, loadRef, "must be a causal LM"},
		{"NoLoader", rm, actor, nil, "reward model: no loader"},
		{"NotARewardModel", rm, actor, loadRef, "not a *ForSequenceClassification model"},
		{"Adam", role.Spec{Actor: role.ActorSpec{Adam: role.Adam{Beta1: 2, Eps: 1}}}, actor, loadRef, "betas must be in [0, 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Build(tc.spec, tc.actor, tc.open)
			if err == nil {
				r.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestBuildSome_EachRoleAloneEqualsAllTogether builds every role in a
// process of its own (a fresh model load each, as a worker would) and
// checks each computes what the roles built together compute.
func TestBuildSome_EachRoleAloneEqualsAllTogether(t *testing.T) {
	ctx := context.Background()
	spec := role.Spec{ForwardBatch: 2, Seed: 9, Actor: role.ActorSpec{Adam: adam()}, Reference: true,
		Critic: &role.CriticSpec{Adam: adam()}, Reward: &role.RewardSpec{Rule: grade.RuleConfig{Kind: grade.RuleExact}}}
	all := build(t, spec, stories(t))
	alone := func(w Want) *Roles {
		r, err := BuildSome(spec, stories(t), loadRef, w)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	actor, ref, critic, rollout := alone(Want{Actor: true}), alone(Want{Reference: true}), alone(Want{Critic: true}), alone(Want{Rollout: true})
	if actor.Reference != nil || actor.Critic != nil || actor.Rollout != nil || actor.Reward != nil || ref.Actor != nil {
		t.Fatal("BuildSome built a role that was not wanted")
	}
	if rollout.MaxPositions() != all.MaxPositions() || actor.MaxPositions() != 0 {
		t.Fatalf("max positions %d / %d, want %d / 0", rollout.MaxPositions(), actor.MaxPositions(), all.MaxPositions())
	}
	seqs := role.Sequences{Tokens: [][]int32{{1, 403, 261, 290, 35}, {1, 71, 9, 300}}, PromptLens: []int{2, 3}}
	eq := func(name string, a, b role.PerToken) {
		t.Helper()
		for i := range a {
			if !slices.Equal(a[i], b[i]) {
				t.Fatalf("%s row %d: %v built alone, %v together", name, i, a[i], b[i])
			}
		}
	}
	lp := func(p role.LogProber) role.PerToken {
		res, err := p.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs})
		if err != nil {
			t.Fatal(err)
		}
		return res.LogProbs
	}
	eq("actor log-probs", lp(actor.Actor), lp(all.Actor))
	eq("reference log-probs", lp(ref.Reference), lp(all.Reference))
	v := func(c role.Critic) role.PerToken {
		res, err := c.Values(ctx, role.ValuesRequest{Seqs: seqs})
		if err != nil {
			t.Fatal(err)
		}
		return res.Values
	}
	eq("critic values", v(critic.Critic), v(all.Critic))
	gen := func(r role.Rollout) []int32 {
		res, err := r.Generate(ctx, role.GenerateRequest{Prompts: []role.Prompt{{Tokens: []int32{1, 403},
			Params: role.SamplingParams{N: 1, MaxNewTokens: 12, Temperature: 1, TopP: 1, Seed: 3}}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Results[0].Completions[0].Tokens
	}
	if a, b := gen(rollout.Rollout), gen(all.Rollout); !slices.Equal(a, b) {
		t.Fatalf("rollout alone %v, together %v", a, b)
	}
}
