package ppo

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Config holds every knob of a PPO-family run. Start from DefaultConfig;
// the flag tags name each field's flag (OpenRLHF's dotted names where the
// concept matches; see package cfgflag) and the comments what the zero
// value means.
type Config struct {
	Actor   ActorConfig   `flag:"actor"`
	Critic  CriticConfig  `flag:"critic"`
	Reward  RewardConfig  `flag:"reward"`
	Rollout RolloutConfig `flag:"rollout"`
	Algo    AlgoConfig
	Data    DataConfig         `flag:"data"`
	Train   TrainConfig        `flag:"train"`
	Eval    EvalConfig         `flag:"eval"`
	Agent   AgentConfig        `flag:"agent"`
	DS      DSConfig           `flag:"ds"`
	Ckpt    train.CkptConfig   `flag:"ckpt"`
	Logger  train.LoggerConfig `flag:"logger"`
}

// ActorConfig is the policy.
type ActorConfig struct {
	Model string `flag:"model_name_or_path"` // HF folder, llama2.c file, Hub id or stories260K
	Optim train.OptimConfig
	// PolicyLoss: --actor.eps_clip (or --actor.eps_clip_low_high),
	// --actor.dual_clip, --actor.policy_loss_type, --actor.loss_agg.
	PolicyLoss  rl.PolicyLossConfig
	EntropyCoef float64 `flag:"entropy_coef"` // weight of the entropy bonus; 0 = none
	// GradientCheckpointing recomputes the actor's transformer block
	// activations in its backward pass instead of keeping them
	// (--actor.gradient_checkpointing_enable); same gradients bit for bit,
	// so not part of what a resume compares.
	GradientCheckpointing bool `json:"-" flag:"gradient_checkpointing_enable"`
}

// CriticConfig is the value model; it exists only for gae.
type CriticConfig struct {
	// Model (--critic.model_name_or_path) is a reward model or a causal LM
	// (which gets a fresh value head); "" means the reward model, or the
	// actor when the reward is not a local model (OpenRLHF's rule).
	Model     string `flag:"model_name_or_path"`
	Optim     train.OptimConfig
	ValueLoss rl.ValueLossConfig // --critic.value_clip
	// FreezingSteps keeps the actor frozen for the first N iterations
	// while the critic warms up (--critic.freezing_steps; OpenRLHF's
	// freezing_actor_steps); 0 = none.
	FreezingSteps int `flag:"freezing_steps"`
	// GradientCheckpointing is the actor's for the critic
	// (--critic.gradient_checkpointing_enable).
	GradientCheckpointing bool `json:"-" flag:"gradient_checkpointing_enable"`
}

// AlgoConfig is the RL math.
type AlgoConfig struct {
	// Advantage: --algo.advantage.estimator, .gamma, .lambd, .no_std_norm,
	// --rollout.n_samples_per_prompt (SamplesPerPrompt) and
	// --reward.clip_range (RewardClip).
	Advantage rl.AdvantageConfig
	// KL: --algo.kl.init_coef, .target, .horizon, .estimator, .use_loss.
	KL rl.KLConfig
	// DynamicFilter is DAPO's dynamic sampling
	// (--algo.dynamic_filtering_enable, _range, _max_rounds).
	DynamicFilter DynamicFilterConfig
	// ISCorrection reweights the policy loss by the importance ratio of
	// the trainer's π_old to the rollout engine's log-probs (truncated
	// importance sampling; --algo.advantage.is_correction_enable, _type,
	// _threshold; offpolicy.go). The engine's log-probs are always
	// collected, so nothing else needs turning on; it refuses
	// --train.engine_logprobs, under which π_old is the engine's and every
	// weight would be 1.
	ISCorrection rl.ISCorrectionConfig
}

// DynamicFilterConfig is DAPO's dynamic sampling (Yu et al. 2025,
// https://arxiv.org/abs/2503.14476): a prompt whose n samples all score
// the same (all right or all wrong under a verifier) gives every group
// estimator zero advantages, so it costs a training pass and teaches
// nothing. With Enable, such groups (and any whose mean score is outside
// Range) are dropped and more prompts are sampled until rollout.batch_size
// groups are kept, for at most MaxRounds generation rounds per iteration.
type DynamicFilterConfig struct {
	Enable bool `flag:"algo.dynamic_filtering_enable"`
	// Range keeps a group when its mean score lies strictly inside
	// (Low, High) and its scores are not all equal
	// (--algo.dynamic_filtering_range, OpenRLHF default "0,1").
	Range rl.DynamicFilter `flag:"algo.dynamic_filtering_range"`
	// MaxRounds bounds the generation rounds of one iteration
	// (--algo.dynamic_filtering_max_rounds): when the batch is still not
	// full after that many, the iteration trains on the groups it kept
	// (fewer samples, a smaller last optimizer step), or skips training
	// when it kept none.
	MaxRounds int `flag:"algo.dynamic_filtering_max_rounds"`
}

// Validate checks the range and the round bound.
func (c DynamicFilterConfig) Validate(samplesPerPrompt int) error {
	if !c.Enable {
		return nil
	}
	var errs []error
	if err := c.Range.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ppo: %s: %w", cfgflag.Flag(&c, &c.Range), err))
	}
	if c.MaxRounds < 1 {
		errs = append(errs, fmt.Errorf("ppo: %s must be ≥ 1, got %d", cfgflag.Flag(&c, &c.MaxRounds), c.MaxRounds))
	}
	if samplesPerPrompt < 2 {
		var a rl.AdvantageConfig
		errs = append(errs, fmt.Errorf("ppo: dynamic filtering compares the samples of a prompt: %s must be > 1, got %d", cfgflag.Flag(&a, &a.SamplesPerPrompt), samplesPerPrompt))
	}
	return errors.Join(errs...)
}

// AgentConfig makes every rollout sample a multi-turn episode with an
// environment (OpenRLHF's --agent_func_path; package env): the policy
// acts, the environment answers, and so on until it says the episode is
// done. The environment gives the reward, so no --reward.* source is set.
type AgentConfig struct {
	// Env names a built-in environment (--agent.env; env.Names lists
	// them); "" means single-turn rollouts. A Go caller may instead pass
	// its own env.Factory in Env.Agent and put any name here for the logs.
	Env string `flag:"env"`
	// EnvArgs configures it (--agent.env_args), "key=value,key=value".
	EnvArgs string `flag:"env_args"`
	// MaxTurns cuts off an episode after this many actions
	// (--agent.max_turns); a cut-off episode counts as truncated.
	MaxTurns int `flag:"max_turns"`
}

// Enabled reports whether rollouts are multi-turn episodes.
func (c AgentConfig) Enabled() bool { return c.Env != "" }

// DSConfig holds the settings OpenRLHF passes to DeepSpeed (--ds.*).
type DSConfig struct {
	// PackingSamples lays the sequences of each forward pass of the
	// actor, reference and critic (log-probs, values, training
	// micro-batches) out packed, several to a row with per-sample
	// attention and positions, instead of one per row padded to the
	// longest (--ds.packing_samples). A row holds as many tokens as the
	// longest sequence of its pass; sequences fill rows first-fit in
	// order. Micro-batches and the loss normalisation are unchanged;
	// results equal the padded run's to float rounding.
	PackingSamples bool `flag:"packing_samples"`
	// ZeroStage is the ZeRO stage of the actor and the critic
	// (--ds.zero_stage, 0–3): how a role placed on several data-parallel
	// ranks (--actor.num_workers_per_node, …) shards its training state
	// (docs/ZERO.md). Every stage trains the same weights bit for bit, so
	// it is not part of what a resume compares when 0.
	ZeroStage int `json:",omitempty" flag:"zero_stage"`
	// LoRA trains the actor and the critic through low-rank adapters on a
	// frozen base (--ds.lora.*; rank 0 = off, the default). The actor's
	// weight sync then carries the adapters alone, merged into the base on
	// the rollout side (docs/LORA.md). One process per role at ZeRO stage
	// 0 only.
	LoRA lora.Config `flag:"lora"`
}

// DataConfig is the prompt dataset.
type DataConfig struct {
	PromptDataset string `flag:"prompt_dataset"` // comma-separated .jsonl/.json/.parquet files
	InputKey      string `flag:"input_key"`      // the prompt field, text or a chat
	LabelKey      string `flag:"label_key"`      // the field passed to rule and remote rewards; "" = none
	MaxSamples    int    `flag:"max_samples"`    // prompts read at most; 0 = all
	// MaxLen is the token budget of prompt plus response (--data.max_len);
	// prompts longer than MaxLen − max_new_tokens are skipped.
	MaxLen            int    `flag:"max_len"`
	InputTemplate     string `flag:"input_template"` // "{}" is the prompt; "" = as is
	ApplyChatTemplate bool   `flag:"apply_chat_template"`
	// TokenizerChatTemplate overrides the model's template
	// (--data.tokenizer_chat_template): a .jinja file or template text.
	TokenizerChatTemplate string `flag:"tokenizer_chat_template"`
}

// TrainConfig is the optimisation schedule.
type TrainConfig struct {
	// BatchSize is the samples (prompt × n) per optimizer step
	// (--train.batch_size); a rollout batch of B·n samples gives
	// B·n/BatchSize steps per PPO epoch.
	BatchSize      int `flag:"batch_size"`
	MicroBatchSize int `flag:"micro_batch_size"` // samples per forward/backward
	MaxEpochs      int `flag:"max_epochs"`       // PPO epochs over each rollout batch
	NumEpisodes    int `flag:"num_episodes"`     // passes over the prompt dataset
	// MaxIterations caps the run's iterations (rollout batches);
	// 0 = NumEpisodes × iterations per episode.
	MaxIterations int    `flag:"max_iterations"`
	Seed          uint64 `flag:"seed"` // prompt order, sampling seeds, shuffles, new heads
	// MaxNonFinite stops the run after this many consecutive optimizer
	// steps (of one role) with a non-finite loss or gradient; each is
	// skipped.
	MaxNonFinite int `flag:"max_nonfinite_steps"`
	// StopAtStep checkpoints and stops after this iteration, as if
	// interrupted (0 = off).
	StopAtStep int `json:"-" flag:"stop_at_step"`
	// EngineLogProbs takes log π_old from the rollout engine, which
	// computes it while sampling with the same weights, instead of
	// recomputing it with a forward pass of the actor as OpenRLHF does
	// (--train.engine_logprobs). It saves that pass; the two agree to float
	// rounding (the engine's incremental KV-cache path sums in another
	// order), so the first PPO ratio is 1 ± 1e-6 instead of exactly 1.
	EngineLogProbs bool `flag:"engine_logprobs"`
	// Async overlaps generation with training (--train.async_*; async.go).
	Async AsyncConfig
}

// EvalConfig measures the policy on held-out prompts.
type EvalConfig struct {
	Dataset string `flag:"dataset"` // prompts (same keys as --data.prompt_dataset); "" = none
	Steps   int    `flag:"steps"`   // every N iterations (and at the start and end); ≤ 0 = start and end only
	// NSamples is completions per eval prompt (--eval.n_samples_per_prompt).
	NSamples int `flag:"n_samples_per_prompt"`
	// Temperature of eval sampling (--eval.temperature); 0 = greedy.
	Temperature float64 `flag:"temperature"`
	MaxSamples  int     `flag:"max_samples"` // eval prompts read at most; 0 = all
}

// DefaultConfig returns OpenRLHF's train_ppo_ray defaults, scaled to a CPU
// (smaller batches) and on the embedded stories260K.
func DefaultConfig() Config {
	actor := train.DefaultConfig().Optim
	actor.LR = 1e-6
	critic := actor
	critic.LR = 9e-6
	return Config{
		Actor:   ActorConfig{Model: "stories260K", Optim: actor, PolicyLoss: rl.DefaultPolicyLossConfig()},
		Critic:  CriticConfig{Optim: critic, ValueLoss: rl.DefaultValueLossConfig()},
		Reward:  RewardConfig{Rule: grade.RuleConfig{Length: grade.DefaultRuleConfig().Length}, Length: rl.LengthPenalty{OverlongFactor: 1}},
		Rollout: RolloutConfig{BatchSize: 16, MaxNewTokens: 64, Temperature: 1, TopP: 1, Backend: BackendGorlhf, WeightSync: "disk", RequestTimeout: 600, MaxRetries: 3},
		Algo: AlgoConfig{Advantage: rl.DefaultAdvantageConfig(), KL: rl.DefaultKLConfig(),
			DynamicFilter: DynamicFilterConfig{Range: rl.DefaultDynamicFilter(), MaxRounds: 4},
			ISCorrection:  rl.DefaultISCorrectionConfig()},
		Data: DataConfig{InputKey: "input", MaxLen: 2048},
		Train: TrainConfig{BatchSize: 16, MicroBatchSize: 4, MaxEpochs: 1, NumEpisodes: 1, Seed: 42,
			MaxNonFinite: 5, Async: AsyncConfig{QueueSize: 1}},
		Eval:   EvalConfig{NSamples: 1, Temperature: 1},
		Agent:  AgentConfig{MaxTurns: 16},
		Ckpt:   train.CkptConfig{OutputDir: "./ckpt/ppo", SaveSteps: -1, MaxNum: 3},
		Logger: train.LoggerConfig{LoggingSteps: 1},
		DS:     DSConfig{LoRA: lora.DefaultConfig()},
	}
}

// NeedsCritic reports whether the run builds a critic (gae only).
func (c Config) NeedsCritic() bool { return c.Algo.Advantage.Estimator.NeedsCritic() }

// NeedsReference reports whether the run builds a reference model: a KL
// penalty in the reward or in the loss with a positive coefficient.
func (c Config) NeedsReference() bool { return c.Algo.KL.Enabled() }

// RoleSpec is what the run's roles are built from (role/inproc.Build, or
// a worker that hosts some of them): the optimizers of the actor and the
// critic, the reward sources, which optional roles the algorithm needs
// (a critic for gae, a reference for a KL penalty; no reward role when an
// environment gives the rewards) and the rollout engine's cache. It is
// meant for a Config that validates.
func (c Config) RoleSpec() role.Spec {
	s := role.Spec{ForwardBatch: c.Rollout.MicroBatchSize, Seed: c.Train.Seed,
		Actor: role.ActorSpec{Adam: role.Adam(c.Actor.Optim.Adam), MaxNorm: c.Actor.Optim.MaxNorm,
			GradientCheckpointing: c.Actor.GradientCheckpointing},
		Reference: c.NeedsReference(),
		Rollout:   role.RolloutSpec{KVCacheMB: c.Rollout.KVCacheMB, PrefixCaching: c.Rollout.EnablePrefixCaching, DType: c.Rollout.DType},
		ZeroStage: c.DS.ZeroStage}
	if l := c.DS.LoRA; l.Enabled() {
		s.LoRA = &role.LoRASpec{Rank: l.Rank, Alpha: l.Alpha, Dropout: l.Dropout, TargetModules: l.TargetModules}
	}
	if c.NeedsCritic() {
		s.Critic = &role.CriticSpec{Model: c.Critic.Model, Adam: role.Adam(c.Critic.Optim.Adam), MaxNorm: c.Critic.Optim.MaxNorm,
			GradientCheckpointing: c.Critic.GradientCheckpointing}
	}
	if c.Reward.sources() > 0 {
		rs := c.Reward.spec(c.Data.MaxLen + 1)
		s.Reward = &rs
	}
	return s
}

// CheckRanks checks that every optimizer step's micro-batches
// (train.batch_size / train.micro_batch_size) split evenly over the
// data-parallel ranks of the actor and of the critic (ranks ≤ 1: one
// process), each rank running an equal share.
func (c Config) CheckRanks(actor, critic int) error {
	steps := c.Train.BatchSize / max(c.Train.MicroBatchSize, 1)
	var errs []error
	for _, r := range []struct {
		name  string
		ranks int
	}{{"actor", actor}, {"critic", critic}} {
		if r.ranks > 1 && steps%r.ranks != 0 {
			errs = append(errs, fmt.Errorf("ppo: a step's %d micro-batches (%s %d / %s %d) do not split evenly over the %s's %d data-parallel ranks (--%s.num_nodes × --%s.num_workers_per_node)",
				steps, c.flag(&c.Train.BatchSize), c.Train.BatchSize, c.flag(&c.Train.MicroBatchSize), c.Train.MicroBatchSize, r.name, r.ranks, r.name, r.name))
		}
	}
	return errors.Join(errs...)
}

// CheckpointDir is Ckpt.Path, or <OutputDir>/checkpoints.
func (c Config) CheckpointDir() string {
	return train.Config{Ckpt: c.Ckpt}.CheckpointDir()
}

// Claim is the run folder this configuration asks for
// (train.ClaimRunDir): a resume starts from the actor's checkpoints.
func (c Config) Claim() train.Claim {
	ck := c.CheckpointDir()
	return train.Claim{Dir: c.Ckpt.OutputDir, Checkpoints: ck, ResumeFrom: filepath.Join(ck, actorCkpt),
		Resume: c.Ckpt.LoadEnable, Overwrite: c.Ckpt.Overwrite}
}

// SamplesPerIteration is rollout.batch_size × n_samples_per_prompt.
func (c Config) SamplesPerIteration() int {
	return c.Rollout.BatchSize * c.Algo.Advantage.SamplesPerPrompt
}

// flag names the flag of a field of c in messages: "--rollout.batch_size".
func (c *Config) flag(field any) string { return cfgflag.Flag(c, field) }

// Validate checks every field and their combinations.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ppo: "+format, args...)) }
	if c.Actor.Model == "" {
		add("%s is required", c.flag(&c.Actor.Model))
	}
	errs = append(errs, c.Algo.Advantage.Validate(), c.Algo.KL.Validate(), c.Actor.PolicyLoss.Validate(),
		c.Algo.DynamicFilter.Validate(c.Algo.Advantage.SamplesPerPrompt),
		c.Reward.Length.Validate(c.Rollout.MaxNewTokens), c.optim("actor", &c.Actor.Optim))
	if c.NeedsCritic() {
		errs = append(errs, c.Critic.ValueLoss.Validate(), c.optim("critic", &c.Critic.Optim))
	}
	if c.Critic.FreezingSteps < 0 {
		add("%s must be ≥ 0, got %d", c.flag(&c.Critic.FreezingSteps), c.Critic.FreezingSteps)
	}
	r := &c.Reward
	switch n := c.Reward.sources(); {
	case c.Agent.Enabled() && n != 0:
		add("%s %s gives the rewards: drop %s, %s and %s", c.flag(&c.Agent.Env), c.Agent.Env, c.flag(&r.Model), c.flag(&r.RemoteURLs), c.flag(&r.Rule.Kind))
	case !c.Agent.Enabled() && n == 0:
		add("set a reward source: %s, %s or %s (several are mixed, %s)", c.flag(&r.Model), c.flag(&r.RemoteURLs), c.flag(&r.Rule.Kind), c.flag(&r.Mix))
	}
	errs = append(errs, c.validateMix())
	if c.Agent.Enabled() && c.Agent.MaxTurns < 1 {
		add("%s must be ≥ 1, got %d", c.flag(&c.Agent.MaxTurns), c.Agent.MaxTurns)
	}
	if c.Agent.Enabled() && r.Length.OverlongBufferLen > 0 {
		add("%s measures one response against %s; it does not apply to multi-turn episodes (%s)",
			c.flag(&r.Length.OverlongBufferLen), c.flag(&c.Rollout.MaxNewTokens), c.flag(&c.Agent.Env))
	}
	if r.Rule.Kind != "" {
		errs = append(errs, r.Rule.Validate())
	}
	if r.Normalize && r.Model == "" {
		add("%s needs a reward model (%s)", c.flag(&r.Normalize), c.flag(&r.Model))
	}
	if !finiteNonNeg(c.Actor.EntropyCoef) {
		add("%s must be a finite number ≥ 0, got %g", c.flag(&c.Actor.EntropyCoef), c.Actor.EntropyCoef)
	}
	errs = append(errs, c.validateRollout(), c.validateTrain(), c.validateData(), c.validateISCorrection())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := cfgflag.Finite(&c); err != nil {
		return fmt.Errorf("ppo: %w", err)
	}
	return nil
}

func (c Config) validateTrain() error {
	t := c.Train
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ppo: "+format, args...)) }
	n := c.SamplesPerIteration()
	if t.MicroBatchSize < 1 || t.BatchSize < 1 || t.BatchSize%t.MicroBatchSize != 0 {
		add("%s (%d) must be a positive multiple of %s (%d)", c.flag(&c.Train.BatchSize), t.BatchSize, c.flag(&c.Train.MicroBatchSize), t.MicroBatchSize)
	} else if n > 0 && n%t.BatchSize != 0 {
		add("%s × %s = %d samples must be a multiple of %s %d",
			cfgflag.Name(&c, &c.Rollout.BatchSize), cfgflag.Name(&c, &c.Algo.Advantage.SamplesPerPrompt), n, c.flag(&c.Train.BatchSize), t.BatchSize)
	}
	if t.MaxEpochs < 1 || t.NumEpisodes < 1 || t.MaxIterations < 0 || t.StopAtStep < 0 {
		add("%s (%d) and %s (%d) must be ≥ 1, %s and %s ≥ 0", c.flag(&c.Train.MaxEpochs), t.MaxEpochs, c.flag(&c.Train.NumEpisodes), t.NumEpisodes,
			c.flag(&c.Train.MaxIterations), c.flag(&c.Train.StopAtStep))
	}
	if t.MaxNonFinite < 1 {
		add("%s must be ≥ 1, got %d", c.flag(&c.Train.MaxNonFinite), t.MaxNonFinite)
	}
	if c.DS.ZeroStage < 0 || c.DS.ZeroStage > 3 {
		add("%s must be 0, 1, 2 or 3, got %d", c.flag(&c.DS.ZeroStage), c.DS.ZeroStage)
	}
	if err := c.DS.LoRA.Validate("ds.lora"); err != nil {
		errs = append(errs, err)
	}
	if c.DS.LoRA.Enabled() && c.DS.ZeroStage > 0 {
		add("%s %d with %s %d: LoRA trains the actor and the critic at ZeRO stage 0", c.flag(&c.DS.LoRA.Rank), c.DS.LoRA.Rank, c.flag(&c.DS.ZeroStage), c.DS.ZeroStage)
	}
	if c.Ckpt.OutputDir == "" {
		add("%s must be set", c.flag(&c.Ckpt.OutputDir))
	}
	if c.Ckpt.SaveSteps == 0 || c.Ckpt.SaveSteps < -1 || c.Ckpt.MaxNum < 1 {
		add("%s must be ≥ 1 or −1 and %s ≥ 1 (got %d, %d)", c.flag(&c.Ckpt.SaveSteps), c.flag(&c.Ckpt.MaxNum), c.Ckpt.SaveSteps, c.Ckpt.MaxNum)
	}
	if c.Ckpt.LoadEnable && c.Ckpt.Overwrite {
		add("%s (resume) and %s (start again) exclude each other", c.flag(&c.Ckpt.LoadEnable), c.flag(&c.Ckpt.Overwrite))
	}
	if c.Logger.LoggingSteps < 1 {
		add("%s must be ≥ 1", c.flag(&c.Logger.LoggingSteps))
	}
	errs = append(errs, c.validateAsync())
	return errors.Join(errs...)
}

func (c Config) validateData() error {
	d := c.Data
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ppo: "+format, args...)) }
	if d.PromptDataset == "" {
		add("%s is required", c.flag(&c.Data.PromptDataset))
	}
	if d.InputKey == "" {
		add("%s must name the prompt field", c.flag(&c.Data.InputKey))
	}
	if d.MaxLen <= c.Rollout.MaxNewTokens {
		add("%s %d leaves no room for a prompt with %s %d", c.flag(&c.Data.MaxLen), d.MaxLen, c.flag(&c.Rollout.MaxNewTokens), c.Rollout.MaxNewTokens)
	}
	if d.MaxSamples < 0 || c.Eval.MaxSamples < 0 {
		add("%s and %s must be ≥ 0", c.flag(&c.Data.MaxSamples), c.flag(&c.Eval.MaxSamples))
	}
	if c.Eval.Dataset != "" && (c.Eval.NSamples < 1 || !(c.Eval.Temperature >= 0)) {
		add("%s %d must be ≥ 1 and %s %g ≥ 0", c.flag(&c.Eval.NSamples), c.Eval.NSamples, c.flag(&c.Eval.Temperature), c.Eval.Temperature)
	}
	return errors.Join(errs...)
}

// optim checks one role's optimizer settings (o is a field of c).
func (c *Config) optim(role string, o *train.OptimConfig) error {
	if err := o.Validate(cfgflag.Prefix(c, o)); err != nil {
		return fmt.Errorf("ppo: %s optimizer: %w", role, err)
	}
	return nil
}

func finiteNonNeg(x float64) bool { return x >= 0 && !math.IsInf(x, 0) }
