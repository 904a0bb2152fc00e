package inproc

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/reward/prmodel"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// TestBuild_ProcessRewardModel: a causal LM folder with prm.json is a
// reward source scoring the tagged steps (aggregated as asked), and a
// critic next to it starts from the actor, not from the PRM.
func TestBuild_ProcessRewardModel(t *testing.T) {
	actor := stories(t)
	dir := filepath.Join(t.TempDir(), "prm")
	if err := load.SaveWith(dir, actor.Model, actor.Config, safetensors.F32, actor.TokenizerFiles); err != nil {
		t.Fatal(err)
	}
	spec := prmodel.Spec{PlaceholderToken: "@", RewardTokens: []string{"+", "-"}}
	if err := prmodel.WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	samples := []grade.Sample{{Prompt: "12+7-4=?\n", Response: "12+7=19\n19-4=15"}, {Prompt: "3+4=?\n", Response: "3+4=8"}}
	c := prmodel.DefaultConfig()
	c.Model, c.Tok, c.Spec, c.MaxLen, c.Aggregation = actor.Model, actor.Tok, spec, 64, prmodel.Last
	direct, err := prmodel.New(c)
	if err != nil {
		t.Fatal(err)
	}
	want, err := direct.Score(context.Background(), samples)
	if err != nil {
		t.Fatal(err)
	}
	r := build(t, role.Spec{Seed: 3, Actor: role.ActorSpec{Adam: adam()}, Critic: &role.CriticSpec{Adam: adam()},
		Reward: &role.RewardSpec{Model: dir, MaxLen: 64, PRMAggregation: "last"}}, actor)
	got, err := r.Reward.Score(context.Background(), role.ScoreRequest{Samples: samples})
	if err != nil {
		t.Fatal(err)
	}
	for i := range samples {
		if got.Results[i].Reward != want[i].Reward || got.Results[i].Reward <= 0 || got.Results[i].Reward >= 1 {
			t.Fatalf("sample %d: reward %v, PRM source %v", i, got.Results[i].Reward, want[i].Reward)
		}
	}
	if r.Critic == nil {
		t.Fatal("no critic")
	}
	bad := role.Spec{Actor: role.ActorSpec{Adam: adam()}, Reward: &role.RewardSpec{Model: dir, MaxLen: 64, Normalize: true}}
	if r, err := Build(bad, actor, loadRef); err == nil {
		r.Close()
		t.Fatal("a PRM with normalisation built")
	} else if !strings.Contains(err.Error(), "no stored mean and std") {
		t.Fatalf("error %v", err)
	}
}
