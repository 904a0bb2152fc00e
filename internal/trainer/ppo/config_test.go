package ppo

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
)

func TestConfig_Validate(t *testing.T) {
	ok := func() Config {
		c := DefaultConfig()
		c.Data.PromptDataset = "prompts.jsonl"
		c.Reward.Rule.Kind = grade.RuleLength
		return c
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("a valid config: %v", err)
	}
	two := ok()
	two.Reward.Model, two.Reward.Mix, two.Reward.ScoreFrom = "rm", []reward.Weight{{Name: "rule", Weight: 0.5}}, "rule"
	if err := two.Validate(); err != nil {
		t.Fatalf("a reward model mixed with a rule: %v", err)
	}
	cases := []struct {
		name, want string
		edit       func(*Config)
	}{
		{"NoReward", "set a reward source", func(c *Config) { c.Reward.Rule.Kind = "" }},
		{"RolloutDType", `--rollout.dtype: half: unknown dtype "int8"`, func(c *Config) { c.Rollout.DType = "int8" }},
		{"MixUnknownPart", `--reward.mix: "remote" is not a reward source that is set (set: rule, model)`, func(c *Config) {
			c.Reward.Model, c.Reward.Mix = "rm", []reward.Weight{{Name: "model", Weight: 1}, {Name: "remote", Weight: 2}}
		}},
		{"ScoreFromUnset", `--reward.score_from: "model" is not a reward source that is set (set: rule)`, func(c *Config) { c.Reward.ScoreFrom = "model" }},
		{"GroupNeedsSamples", "requires n_samples_per_prompt > 1", func(c *Config) { c.Algo.Advantage.Estimator = rl.EstimatorGroupNorm }},
		{"BatchNotMultiple", "multiple of --train.micro_batch_size", func(c *Config) { c.Train.MicroBatchSize = 3 }},
		{"RolloutNotMultiple", "must be a multiple of --train.batch_size", func(c *Config) { c.Train.BatchSize = 12; c.Train.MicroBatchSize = 4 }},
		{"NoPrompts", "--data.prompt_dataset is required", func(c *Config) { c.Data.PromptDataset = "" }},
		{"NoRoomForPrompt", "leaves no room", func(c *Config) { c.Data.MaxLen = 64 }},
		{"BadClip", "policy clip", func(c *Config) { c.Actor.PolicyLoss.ClipLow = 1.5 }},
		{"BadKL", "KL estimator", func(c *Config) { c.Algo.KL.Estimator = "k9" }},
		{"NegativeFreeze", "freezing_steps", func(c *Config) { c.Critic.FreezingSteps = -1 }},
		{"NormalizeNeedsModel", "normalize_enable needs a reward model", func(c *Config) { c.Reward.Normalize = true }},
		{"BadCriticLR", "critic optimizer", func(c *Config) { c.Critic.Optim.LR = -1 }},
		{"BadTemperature", "temperature", func(c *Config) { c.Rollout.Temperature = -1 }},
		{"BadEntropy", "entropy_coef", func(c *Config) { c.Actor.EntropyCoef = -0.1 }},
		{"BadOverlong", "overlong buffer", func(c *Config) { c.Reward.Length.OverlongBufferLen = 1000 }},
		{"GroupGamma", "discounts nothing", func(c *Config) {
			c.Algo.Advantage.Estimator, c.Algo.Advantage.SamplesPerPrompt, c.Algo.Advantage.Gamma = rl.EstimatorRLOO, 4, 0.9
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestConfig_Roles(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		est              rl.Estimator
		coef             float64
		critic, refModel bool
	}{
		{rl.EstimatorGAE, 0.01, true, true},
		{rl.EstimatorGAE, 0, true, false},
		{rl.EstimatorGroupNorm, 0.01, false, true},
		{rl.EstimatorReinforce, 0, false, false},
	} {
		c.Algo.Advantage.Estimator, c.Algo.KL.InitCoef = tc.est, tc.coef
		if c.NeedsCritic() != tc.critic || c.NeedsReference() != tc.refModel {
			t.Errorf("%s β=%g: critic %v reference %v", tc.est, tc.coef, c.NeedsCritic(), c.NeedsReference())
		}
	}
}

func TestConfig_RoleSpec(t *testing.T) {
	c := DefaultConfig()
	c.Algo.Advantage.Estimator, c.Algo.KL.InitCoef = rl.EstimatorGAE, 0.01
	c.Actor.Optim.Adam.WeightDecay, c.Critic.Optim.Adam.Beta2 = 0.1, 0.99
	c.Critic.Model, c.Rollout.MicroBatchSize, c.Rollout.KVCacheMB, c.Train.Seed = "critic-dir", 3, 64, 7
	c.Rollout.DType = "bf16"
	c.Critic.GradientCheckpointing, c.DS.ZeroStage, c.Critic.Optim.MaxNorm = true, 2, 0.5
	c.Reward.Rule = grade.RuleConfig{Kind: grade.RuleExact}
	c.Reward.Model, c.Reward.Normalize, c.Reward.BatchSize = "rm-dir", true, 5
	c.Reward.Mix, c.Reward.ScoreFrom = []reward.Weight{{Name: role.PartModel, Weight: 2}}, role.PartRule
	want := role.Spec{ForwardBatch: 3, Seed: 7,
		Actor:     role.ActorSpec{Adam: role.Adam{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}, MaxNorm: 1},
		Reference: true,
		Critic: &role.CriticSpec{Model: "critic-dir", Adam: role.Adam{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}, MaxNorm: 0.5,
			GradientCheckpointing: true},
		ZeroStage: 2,
		Reward: &role.RewardSpec{Rule: grade.RuleConfig{Kind: grade.RuleExact}, Model: "rm-dir", Normalize: true, BatchSize: 5,
			MaxLen: c.Data.MaxLen + 1, Mix: map[string]float64{role.PartModel: 2}, ScoreFrom: role.PartRule},
		Rollout: role.RolloutSpec{KVCacheMB: 64, DType: "bf16"}}
	got := c.RoleSpec()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spec\n%+v\n%+v %+v\nwant\n%+v\n%+v %+v", got, got.Critic, got.Reward, want, want.Critic, want.Reward)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	// GRPO without a KL penalty, rewards from an environment: actor and
	// rollout only.
	c.Algo.Advantage.Estimator, c.Algo.KL.InitCoef = rl.EstimatorGroupNorm, 0
	c.Reward = RewardConfig{}
	c.Agent = AgentConfig{Env: "chain", MaxTurns: 2}
	if s := c.RoleSpec(); s.Critic != nil || s.Reference || s.Reward != nil {
		t.Fatalf("spec %+v: want no critic, reference or reward", s)
	}
}

// TestConfig_CheckRanks: a step's micro-batches must split evenly over a
// data-parallel actor's and critic's ranks; the error names the flags,
// the counts and the ranks.
func TestConfig_CheckRanks(t *testing.T) {
	c := DefaultConfig() // 16 / 4 = 4 micro-batches a step
	for _, ok := range [][2]int{{1, 1}, {2, 4}, {4, 2}, {1, 0}} {
		if err := c.CheckRanks(ok[0], ok[1]); err != nil {
			t.Errorf("actor %d, critic %d ranks: %v", ok[0], ok[1], err)
		}
	}
	err := c.CheckRanks(3, 8)
	for _, want := range []string{"4 micro-batches (--train.batch_size 16 / --train.micro_batch_size 4)", "actor's 3 data-parallel ranks (--actor.num_nodes × --actor.num_workers_per_node)", "critic's 8 data-parallel ranks"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("CheckRanks(3, 8) = %v, want it to say %q", err, want)
		}
	}
}
