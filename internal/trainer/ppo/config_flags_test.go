package ppo

import (
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
)

// TestConfig_ValidateNamesFlags: every message of Validate that names a
// setting names its flag as the command line spells it (the names come
// from the struct tags; a message that could not find one would panic).
func TestConfig_ValidateNamesFlags(t *testing.T) {
	ok := func() Config {
		c := DefaultConfig()
		c.Data.PromptDataset = "prompts.jsonl"
		c.Reward.Rule.Kind = grade.RuleLength
		return c
	}
	cases := []struct {
		name, want string
		edit       func(*Config)
	}{
		{"NoActor", "ppo: --actor.model_name_or_path is required", func(c *Config) { c.Actor.Model = "" }},
		{"Freeze", "ppo: --critic.freezing_steps must be ≥ 0, got -1", func(c *Config) { c.Critic.FreezingSteps = -1 }},
		{"AgentAndReward", "ppo: --agent.env chain gives the rewards: drop --reward.model_name_or_path, --reward.remote_url and --reward.rule",
			func(c *Config) { c.Agent.Env = "chain" }},
		{"NoReward", "ppo: set a reward source: --reward.model_name_or_path, --reward.remote_url or --reward.rule (several are mixed, --reward.mix)",
			func(c *Config) { c.Reward.Rule.Kind = "" }},
		{"Mix", `ppo: --reward.mix: "model" is not a reward source that is set (set: rule)`,
			func(c *Config) { c.Reward.Mix = []reward.Weight{{Name: "model", Weight: 1}} }},
		{"ScoreFrom", `ppo: --reward.score_from: "remote" is not a reward source that is set`, func(c *Config) { c.Reward.ScoreFrom = "remote" }},
		{"Turns", "ppo: --agent.max_turns must be ≥ 1, got 0", func(c *Config) { c.Agent.Env, c.Reward.Rule.Kind, c.Agent.MaxTurns = "chain", "", 0 }},
		{"OverlongAgent", "ppo: --reward.overlong_buffer_len measures one response against --rollout.max_new_tokens; it does not apply to multi-turn episodes (--agent.env)",
			func(c *Config) { c.Agent.Env, c.Reward.Rule.Kind, c.Reward.Length.OverlongBufferLen = "chain", "", 4 }},
		{"Normalize", "ppo: --reward.normalize_enable needs a reward model (--reward.model_name_or_path)", func(c *Config) { c.Reward.Normalize = true }},
		{"Entropy", "ppo: --actor.entropy_coef must be a finite number ≥ 0", func(c *Config) { c.Actor.EntropyCoef = -1 }},
		{"Rollout", "ppo: --rollout.batch_size (0) and --rollout.max_new_tokens (64) must be ≥ 1", func(c *Config) { c.Rollout.BatchSize = 0 }},
		{"Stop", "ppo: --rollout.stop: a stop string must not be empty", func(c *Config) { c.Rollout.Stop = []string{""} }},
		{"Backend", `ppo: --rollout.backend "vllm": want gorlhf or openai`, func(c *Config) { c.Rollout.Backend = "vllm" }},
		{"NoURLs", "ppo: --rollout.backend openai needs --rollout.urls", func(c *Config) { c.Rollout.Backend = "openai" }},
		{"URLsInProcess", "ppo: --rollout.urls needs --rollout.backend openai", func(c *Config) { c.Rollout.URLs = []string{"http://127.0.0.1:8000"} }},
		{"ExternalCache", "ppo: --rollout.enable_prefix_caching and --rollout.kv_cache_mb configure the in-process engine", func(c *Config) {
			c.Rollout.Backend, c.Rollout.URLs, c.Rollout.KVCacheMB = "openai", []string{"http://127.0.0.1:8000"}, 64
		}},
		{"WeightSync", `ppo: --rollout.weight_sync "nccl": want disk or vllm`, func(c *Config) { c.Rollout.WeightSync = "nccl" }},
		{"RequestTimeout", "ppo: --rollout.request_timeout 0 must be > 0 and --rollout.max_retries 3 ≥ 0", func(c *Config) { c.Rollout.RequestTimeout = 0 }},
		{"Batch", "ppo: --train.batch_size (16) must be a positive multiple of --train.micro_batch_size (3)", func(c *Config) { c.Train.MicroBatchSize = 3 }},
		{"RolloutMultiple", "ppo: rollout.batch_size × rollout.n_samples_per_prompt = 16 samples must be a multiple of --train.batch_size 12",
			func(c *Config) { c.Train.BatchSize, c.Train.MicroBatchSize = 12, 4 }},
		{"Epochs", "ppo: --train.max_epochs (0) and --train.num_episodes (1) must be ≥ 1, --train.max_iterations and --train.stop_at_step ≥ 0",
			func(c *Config) { c.Train.MaxEpochs = 0 }},
		{"NonFinite", "ppo: --train.max_nonfinite_steps must be ≥ 1, got 0", func(c *Config) { c.Train.MaxNonFinite = 0 }},
		{"OutputDir", "ppo: --ckpt.output_dir must be set", func(c *Config) { c.Ckpt.OutputDir = "" }},
		{"SaveSteps", "ppo: --ckpt.save_steps must be ≥ 1 or −1 and --ckpt.max_num ≥ 1 (got 0, 3)", func(c *Config) { c.Ckpt.SaveSteps = 0 }},
		{"Logging", "ppo: --logger.logging_steps must be ≥ 1", func(c *Config) { c.Logger.LoggingSteps = 0 }},
		{"NoPrompts", "ppo: --data.prompt_dataset is required", func(c *Config) { c.Data.PromptDataset = "" }},
		{"InputKey", "ppo: --data.input_key must name the prompt field", func(c *Config) { c.Data.InputKey = "" }},
		{"MaxLen", "ppo: --data.max_len 64 leaves no room for a prompt with --rollout.max_new_tokens 64", func(c *Config) { c.Data.MaxLen = 64 }},
		{"MaxSamples", "ppo: --data.max_samples and --eval.max_samples must be ≥ 0", func(c *Config) { c.Eval.MaxSamples = -1 }},
		{"Eval", "ppo: --eval.n_samples_per_prompt 0 must be ≥ 1 and --eval.temperature 1 ≥ 0", func(c *Config) { c.Eval.Dataset, c.Eval.NSamples = "e.jsonl", 0 }},
		{"FilterRange", "ppo: --algo.dynamic_filtering_range: rl: dynamic filtering range", func(c *Config) {
			c.Algo.DynamicFilter.Enable, c.Algo.DynamicFilter.Range = true, rl.DynamicFilter{Low: 1, High: 0}
		}},
		{"FilterRounds", "ppo: --algo.dynamic_filtering_max_rounds must be ≥ 1, got 0", func(c *Config) {
			c.Algo.DynamicFilter.Enable, c.Algo.DynamicFilter.MaxRounds = true, 0
		}},
		{"FilterGroups", "ppo: dynamic filtering compares the samples of a prompt: --rollout.n_samples_per_prompt must be > 1, got 1",
			func(c *Config) { c.Algo.DynamicFilter.Enable = true }},
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
