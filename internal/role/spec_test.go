package role

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

func TestSpec_JSON(t *testing.T) {
	// A spec survives encoding unchanged: a worker can be handed one.
	s := Spec{ForwardBatch: 4, Seed: 42, Actor: ActorSpec{Adam: Adam{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.01}, GradientCheckpointing: true},
		Reference: true, Critic: &CriticSpec{Model: "rm", Adam: Adam{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8}, GradientCheckpointing: true},
		Reward: &RewardSpec{Rule: grade.RuleConfig{Kind: grade.RuleLength, Length: grade.LengthConfig{Target: 20, Unit: grade.UnitWords}},
			RemoteURLs: []string{"http://127.0.0.1:5000/get_reward"}, Model: "rm", Normalize: true, BatchSize: 8, MaxLen: 513,
			Mix: map[string]float64{PartModel: 1, PartRule: 0.5}, ScoreFrom: PartRule},
		Rollout: RolloutSpec{KVCacheMB: 256}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got Spec
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("decoded %s as %+v", b, got)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRewardSpec_Parts(t *testing.T) {
	r := RewardSpec{Model: "rm", RemoteURLs: []string{"http://x"}, Rule: grade.RuleConfig{Kind: grade.RuleMath}}
	if got := r.Parts(); !slices.Equal(got, []string{PartRule, PartRemote, PartModel}) {
		t.Fatalf("parts %v", got)
	}
	if got := (RewardSpec{Model: "rm"}).Parts(); !slices.Equal(got, []string{PartModel}) {
		t.Fatalf("parts %v", got)
	}
}

func TestSpec_Validate(t *testing.T) {
	rule := grade.RuleConfig{Kind: grade.RuleExact}
	for _, tc := range []struct {
		name string
		s    Spec
		want string
	}{
		{"NoReward", Spec{}, ""},
		{"Negative", Spec{ForwardBatch: -1}, "must be ≥ 0"},
		{"NoSource", Spec{Reward: &RewardSpec{}}, "no source set"},
		{"BadRule", Spec{Reward: &RewardSpec{Rule: grade.RuleConfig{Kind: "maths"}}}, `unknown rule "maths"`},
		{"MixName", Spec{Reward: &RewardSpec{Rule: rule, Mix: map[string]float64{PartModel: 1}}}, `mix weighs "model", not a source that is set (set: rule)`},
		{"ScoreFrom", Spec{Reward: &RewardSpec{Rule: rule, ScoreFrom: PartRemote}}, `score_from "remote"`},
		{"ModelMaxLen", Spec{Reward: &RewardSpec{Model: "rm", MaxLen: 1}}, "max len 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
