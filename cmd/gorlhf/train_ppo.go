package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/env"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// runTrainPPO is `gorlhf train ppo`: OpenRLHF's train_ppo_ray with every
// advantage estimator (PPO with a critic, REINFORCE++, RLOO, GRPO, …).
func runTrainPPO(ctx context.Context, args []string) error {
	cfg := ppo.DefaultConfig()
	f := newTrainFlags("ppo")
	registerPPO(f.fs, &cfg)
	if err := f.parse(args); err != nil {
		return err
	}
	return runPPO(ctx, cfg, f.quiet)
}

// runPPO loads the models, builds the in-process roles and trains.
func runPPO(ctx context.Context, cfg ppo.Config, quiet bool) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	dc := data.Config{ApplyChatTemplate: cfg.Data.ApplyChatTemplate, TokenizerChatTemplate: cfg.Data.TokenizerChatTemplate}
	te, err := trainSetup(cfg.Actor.Model, dc, quiet)
	if err != nil {
		return err
	}
	roles, err := ppo.NewInProc(cfg, te, loadModel)
	if err != nil {
		return err
	}
	defer roles.Close()
	pe := ppo.Env{Tok: te.Tok, Template: te.Template, Console: te.Console, TTY: te.TTY, MaxPositions: roles.MaxPositions(),
		StopIDs: te.StopIDs, NoBOS: !te.AddBOS}
	if key := os.Getenv(envAPIKeyEnv); cfg.Agent.Env == "remote" && key != "" {
		if pe.Agent, err = env.OpenRemote(cfg.Agent.EnvArgs, key); err != nil {
			return fmt.Errorf("--agent.env_args: %w", err)
		}
	}
	t, err := ppo.New(ctx, cfg, roles.Roles, pe)
	if err != nil {
		return err
	}
	return t.Run(ctx)
}

// registerPPO binds every flag of `gorlhf train ppo` to cfg.
func registerPPO(fs *flag.FlagSet, c *ppo.Config) {
	fs.StringVar(&c.Actor.Model, "actor.model_name_or_path", c.Actor.Model, "policy to train: HF folder, llama2.c file, cached Hub id, or stories260K (embedded)")
	registerOptim(fs, "actor", &c.Actor.Optim)
	fs.Var(epsClip{&c.Actor.PolicyLoss}, "actor.eps_clip", "PPO clip ε (sets both ε_low and ε_high)")
	fs.Var(floatPair{&c.Actor.PolicyLoss.ClipLow, &c.Actor.PolicyLoss.ClipHigh}, "actor.eps_clip_low_high", `asymmetric clip "ε_low,ε_high" (DAPO clip-higher, e.g. 0.2,0.28)`)
	fs.Float64Var(&c.Actor.PolicyLoss.DualClip, "actor.dual_clip", c.Actor.PolicyLoss.DualClip, "dual-clip constant c > 1 (0 = off)")
	fs.Var(&c.Actor.PolicyLoss.Type, "actor.policy_loss_type", "ppo (per-token ratio) or gspo (per-sequence ratio)")
	fs.Var(&c.Actor.PolicyLoss.Aggregation, "actor.loss_agg", "token_mean or seq_mean_token_mean")
	fs.Float64Var(&c.Actor.EntropyCoef, "actor.entropy_coef", c.Actor.EntropyCoef, "entropy bonus weight (0 = none)")

	fs.StringVar(&c.Critic.Model, "critic.model_name_or_path", c.Critic.Model, "critic (gae only): a reward model or causal LM; default: the reward model, else the actor")
	registerOptim(fs, "critic", &c.Critic.Optim)
	fs.Float64Var(&c.Critic.ValueLoss.Clip, "critic.value_clip", c.Critic.ValueLoss.Clip, "value clipping ε_v (0 = off)")
	fs.IntVar(&c.Critic.FreezingSteps, "critic.freezing_steps", c.Critic.FreezingSteps, "iterations that train only the critic (actor frozen) at the start")

	registerReward(fs, &c.Reward, &c.Algo.Advantage)

	fs.IntVar(&c.Rollout.BatchSize, "rollout.batch_size", c.Rollout.BatchSize, "prompts per iteration")
	fs.IntVar(&c.Algo.Advantage.SamplesPerPrompt, "rollout.n_samples_per_prompt", c.Algo.Advantage.SamplesPerPrompt, "samples per prompt (group estimators need > 1)")
	fs.IntVar(&c.Rollout.MaxNewTokens, "rollout.max_new_tokens", c.Rollout.MaxNewTokens, "most tokens per response")
	fs.Float64Var(&c.Rollout.Temperature, "rollout.temperature", c.Rollout.Temperature, "sampling temperature")
	fs.Float64Var(&c.Rollout.TopP, "rollout.top_p", c.Rollout.TopP, "nucleus sampling mass (1 = off)")
	fs.IntVar(&c.Rollout.TopK, "rollout.top_k", c.Rollout.TopK, "top-k sampling (0 = off)")
	fs.IntVar(&c.Rollout.MicroBatchSize, "rollout.micro_batch_size", c.Rollout.MicroBatchSize, "sequences per inference pass of actor, reference and critic (0 = all)")
	fs.Var(stopList{&c.Rollout.Stop}, "rollout.stop", `stop strings besides EOS: a JSON list such as '["\n", "</answer>"]', or one string (\n and \t escapes understood)`)
	fs.IntVar(&c.Rollout.KVCacheMB, "rollout.kv_cache_mb", c.Rollout.KVCacheMB, "rollout engine KV-cache budget in MiB (0 = 1024)")

	a := &c.Algo.Advantage
	fs.Var(&a.Estimator, "algo.advantage.estimator", "gae, reinforce, reinforce_baseline, rloo, group_norm (GRPO) or dr_grpo")
	fs.Float64Var(&a.Gamma, "algo.advantage.gamma", a.Gamma, "discount γ")
	fs.Float64Var(&a.Lambda, "algo.advantage.lambd", a.Lambda, "GAE λ")
	fs.BoolVar(&a.NoStdNorm, "algo.advantage.no_std_norm", a.NoStdNorm, "whitening subtracts the mean only")
	k := &c.Algo.KL
	fs.Float64Var(&k.InitCoef, "algo.kl.init_coef", k.InitCoef, "KL coefficient β (0 = no reference model)")
	fs.Float64Var(&k.Target, "algo.kl.target", k.Target, "adaptive KL target (0 = fixed β)")
	fs.Float64Var(&k.Horizon, "algo.kl.horizon", k.Horizon, "adaptive KL horizon in samples")
	fs.Var(&k.Estimator, "algo.kl.estimator", "k1, k2 or k3")
	fs.BoolVar(&k.UseLoss, "algo.kl.use_loss", k.UseLoss, "KL as a loss term instead of in the reward (GRPO)")
	df := &c.Algo.DynamicFilter
	fs.BoolVar(&df.Enable, "algo.dynamic_filtering_enable", df.Enable, "DAPO dynamic sampling: drop prompts whose samples all score the same (or whose mean score is outside the range) and sample more prompts to fill the batch")
	fs.Var(floatPair{&df.Range.Low, &df.Range.High}, "algo.dynamic_filtering_range", `dynamic filtering keeps a group whose mean score is inside the open interval "lo,hi"`)
	fs.IntVar(&df.MaxRounds, "algo.dynamic_filtering_max_rounds", df.MaxRounds, "dynamic filtering: generation rounds per iteration at most; a batch still not full trains on the groups kept")

	ag := &c.Agent
	fs.StringVar(&ag.Env, "agent.env", ag.Env, "multi-turn rollouts with a built-in environment that gives the rewards (no --reward.*): "+strings.Join(env.Names(), "; "))
	fs.StringVar(&ag.EnvArgs, "agent.env_args", ag.EnvArgs, `environment settings, "key=value,key=value"`)
	fs.IntVar(&ag.MaxTurns, "agent.max_turns", ag.MaxTurns, "end an episode after this many actions (counted as truncated)")

	d := &c.Data
	fs.StringVar(&d.PromptDataset, "data.prompt_dataset", d.PromptDataset, "prompts: comma-separated .jsonl, .json or .parquet files")
	fs.StringVar(&d.InputKey, "data.input_key", d.InputKey, "field holding the prompt (text or a chat)")
	fs.StringVar(&d.LabelKey, "data.label_key", d.LabelKey, "field passed to rule and remote rewards as the label")
	fs.IntVar(&d.MaxSamples, "data.max_samples", d.MaxSamples, "read at most this many prompts (0 = all)")
	fs.IntVar(&d.MaxLen, "data.max_len", d.MaxLen, "token budget of prompt + response; longer prompts are skipped")
	fs.StringVar(&d.InputTemplate, "data.input_template", d.InputTemplate, `plain-text prompt template, "{}" is the prompt`)
	fs.BoolVar(&d.ApplyChatTemplate, "data.apply_chat_template", d.ApplyChatTemplate, "render prompts with the model's chat template")
	fs.StringVar(&d.TokenizerChatTemplate, "data.tokenizer_chat_template", d.TokenizerChatTemplate, "chat template to use instead: a .jinja file or the template text")

	registerPPOTrain(fs, c)
}

// registerPPOTrain binds the train, eval, ckpt and logger flags.
func registerPPOTrain(fs *flag.FlagSet, c *ppo.Config) {
	t := &c.Train
	fs.IntVar(&t.BatchSize, "train.batch_size", t.BatchSize, "samples per optimizer step")
	fs.IntVar(&t.MicroBatchSize, "train.micro_batch_size", t.MicroBatchSize, "samples per forward/backward (the rest is gradient accumulation)")
	fs.IntVar(&t.MaxEpochs, "train.max_epochs", t.MaxEpochs, "PPO epochs over each rollout batch")
	fs.IntVar(&t.NumEpisodes, "train.num_episodes", t.NumEpisodes, "passes over the prompt dataset")
	fs.IntVar(&t.MaxIterations, "train.max_iterations", t.MaxIterations, "stop after this many iterations (0 = num_episodes × prompts / rollout.batch_size)")
	fs.Uint64Var(&t.Seed, "train.seed", t.Seed, "seed of prompt order, sampling, shuffles and new heads")
	fs.IntVar(&t.MaxNonFinite, "train.max_nonfinite_steps", t.MaxNonFinite, "stop after this many consecutive non-finite optimizer steps (each is skipped)")
	fs.IntVar(&t.StopAtStep, "train.stop_at_step", t.StopAtStep, "checkpoint and stop after this iteration, as if interrupted (0 = off)")
	fs.BoolVar(&t.EngineLogProbs, "train.engine_logprobs", t.EngineLogProbs, "use the rollout engine's log-probs as π_old instead of recomputing them with the actor")

	e := &c.Eval
	fs.StringVar(&e.Dataset, "eval.dataset", e.Dataset, "held-out prompts (same keys as --data.prompt_dataset)")
	fs.IntVar(&e.Steps, "eval.steps", e.Steps, "evaluate every N iterations (always at the start and the end)")
	fs.IntVar(&e.NSamples, "eval.n_samples_per_prompt", e.NSamples, "samples per eval prompt")
	fs.Float64Var(&e.Temperature, "eval.temperature", e.Temperature, "eval sampling temperature (0 = greedy)")
	fs.IntVar(&e.MaxSamples, "eval.max_samples", e.MaxSamples, "read at most this many eval prompts (0 = all)")

	fs.StringVar(&c.Ckpt.OutputDir, "ckpt.output_dir", c.Ckpt.OutputDir, "run folder: final actor (critic in critic/), metrics.jsonl, train.log, plots, report.html")
	fs.StringVar(&c.Ckpt.Path, "ckpt.path", c.Ckpt.Path, "checkpoint folder (default <output_dir>/checkpoints; _actor and _critic inside)")
	fs.IntVar(&c.Ckpt.SaveSteps, "ckpt.save_steps", c.Ckpt.SaveSteps, "checkpoint every N iterations (-1 = never; stopping still saves one)")
	fs.IntVar(&c.Ckpt.MaxNum, "ckpt.max_num", c.Ckpt.MaxNum, "checkpoints kept")
	fs.BoolVar(&c.Ckpt.LoadEnable, "ckpt.load_enable", c.Ckpt.LoadEnable, "resume from the latest checkpoint in --ckpt.path")
	fs.IntVar(&c.Logger.LoggingSteps, "logger.logging_steps", c.Logger.LoggingSteps, "write metrics every N iterations (and the last)")
	fs.StringVar(&c.Logger.TensorboardDir, "logger.tensorboard_dir", c.Logger.TensorboardDir, "TensorBoard event folder (default <output_dir>/tensorboard)")
}

// registerReward binds the --reward.* flags.
func registerReward(fs *flag.FlagSet, r *ppo.RewardConfig, a *rl.AdvantageConfig) {
	fs.StringVar(&r.Model, "reward.model_name_or_path", r.Model, "reward model folder (*ForSequenceClassification, e.g. from gorlhf train rm)")
	fs.Var(urlList{&r.RemoteURLs}, "reward.remote_url", "reward server URL(s), comma-separated (OpenRLHF /get_reward protocol)")
	fs.Var(&r.Rule.Kind, "reward.rule", "built-in grader: math, exact, regex, length or format (labels from --data.label_key)")
	fs.StringVar(&r.Rule.Pattern, "reward.rule_pattern", r.Rule.Pattern, "regular expression of the regex and format graders")
	fs.BoolVar(&r.Rule.FoldCase, "reward.rule_fold_case", r.Rule.FoldCase, "exact grader ignores case")
	fs.IntVar(&r.Rule.Length.Target, "reward.length_target", r.Rule.Length.Target, "length grader: the length that earns 1")
	fs.Var(&r.Rule.Length.Unit, "reward.length_unit", "length grader: chars, words or tokens")
	fs.BoolVar(&r.Normalize, "reward.normalize_enable", r.Normalize, "normalise reward-model scores with the mean/std in its config.json")
	fs.Var(floatPair{&a.RewardClip.Lo, &a.RewardClip.Hi}, "reward.clip_range", `clip rewards to "lo,hi" before KL shaping`)
	fs.Float64Var(&r.Length.OverlongBufferLen, "reward.overlong_buffer_len", r.Length.OverlongBufferLen, "DAPO overlong buffer in tokens (0 = off)")
	fs.Float64Var(&r.Length.OverlongFactor, "reward.overlong_penalty_factor", r.Length.OverlongFactor, "DAPO overlong penalty at max_new_tokens")
	fs.Var(stopPenalty{&r.Length}, "reward.stop_properly_penalty_coef", "ProRL: scale a truncated response's reward by this (in [0,1]), or replace it when negative")
	fs.IntVar(&r.BatchSize, "reward.batch_size", r.BatchSize, "sequences per reward-model forward pass (0 = 16)")
	fs.Var(mixWeights{&r.Mix}, "reward.mix", `weights when several reward sources are set, e.g. "model=1,rule=0.5" (parts: model, remote, rule; unlisted = 1)`)
	fs.StringVar(&r.ScoreFrom, "reward.score_from", r.ScoreFrom, "with several sources: the part whose score dynamic filtering compares (e.g. rule); default: the weighted sum")
}

// registerOptim binds one role's --<role>.adam.* and schedule flags.
func registerOptim(fs *flag.FlagSet, role string, o *train.OptimConfig) {
	fs.Float64Var(&o.LR, role+".adam.lr", o.LR, role+" peak learning rate")
	fs.Var(betas{&o.Adam.Beta1, &o.Adam.Beta2}, role+".adam.betas", role+` AdamW betas, as "0.9,0.95"`)
	fs.Float64Var(&o.Adam.Eps, role+".adam.eps", o.Adam.Eps, role+" AdamW epsilon")
	fs.Float64Var(&o.Adam.WeightDecay, role+".adam.weight_decay", o.Adam.WeightDecay, role+" AdamW weight decay")
	fs.Var(&o.Scheduler, role+".lr_scheduler", role+" LR schedule: cosine_with_min_lr or constant")
	fs.Float64Var(&o.WarmupRatio, role+".lr_warmup_ratio", o.WarmupRatio, role+" warm-up as a fraction of its optimizer steps")
	fs.Float64Var(&o.MinLRRatio, role+".min_lr_ratio", o.MinLRRatio, role+" cosine floor as a fraction of the peak")
	fs.Float64Var(&o.MaxNorm, role+".max_norm", o.MaxNorm, role+" gradient-norm clip (0 = off)")
}

// floatPair is a flag.Value of two floats written "a,b".
type floatPair struct{ a, b *float64 }

func (p floatPair) String() string {
	if p.a == nil {
		return ""
	}
	return fmt.Sprintf("%g,%g", *p.a, *p.b)
}

func (p floatPair) Set(s string) error {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '[' || r == ']' || r == '(' || r == ')' })
	if len(parts) != 2 {
		return fmt.Errorf("want two numbers like 0.2,0.28, got %q", s)
	}
	a, err1 := strconv.ParseFloat(parts[0], 64)
	b, err2 := strconv.ParseFloat(parts[1], 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bad number pair %q", s)
	}
	*p.a, *p.b = a, b
	return nil
}

// epsClip sets ε_low and ε_high together.
type epsClip struct{ c *rl.PolicyLossConfig }

func (e epsClip) String() string {
	if e.c == nil {
		return ""
	}
	return strconv.FormatFloat(e.c.ClipLow, 'g', -1, 64)
}

func (e epsClip) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("bad clip %q", s)
	}
	e.c.ClipLow, e.c.ClipHigh = v, v
	return nil
}

// urlList is a comma-separated list of URLs.
// stopList is the --rollout.stop value.
type stopList struct{ s *[]string }

func (l stopList) String() string {
	if l.s == nil || len(*l.s) == 0 {
		return ""
	}
	b, _ := json.Marshal(*l.s)
	return string(b)
}

func (l stopList) Set(v string) error {
	if strings.HasPrefix(strings.TrimSpace(v), "[") {
		var out []string
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			return fmt.Errorf("not a JSON list of strings: %w", err)
		}
		*l.s = out
		return nil
	}
	*l.s = []string{strings.NewReplacer(`\n`, "\n", `\t`, "\t").Replace(v)}
	return nil
}

// mixWeights is the --reward.mix value.
type mixWeights struct{ w *[]reward.Weight }

func (m mixWeights) String() string {
	if m.w == nil {
		return ""
	}
	parts := make([]string, len(*m.w))
	for i, w := range *m.w {
		parts[i] = fmt.Sprintf("%s=%g", w.Name, w.Weight)
	}
	return strings.Join(parts, ",")
}

func (m mixWeights) Set(s string) error {
	w, err := reward.ParseWeights(s)
	if err != nil {
		return err
	}
	*m.w = w
	return nil
}

type urlList struct{ urls *[]string }

func (u urlList) String() string {
	if u.urls == nil {
		return ""
	}
	return strings.Join(*u.urls, ",")
}

func (u urlList) Set(s string) error {
	*u.urls = nil
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*u.urls = append(*u.urls, x)
		}
	}
	return nil
}

// stopPenalty turns the stop-properly penalty on with a coefficient.
type stopPenalty struct{ p *rl.LengthPenalty }

func (s stopPenalty) String() string {
	if s.p == nil || !s.p.StopProperly {
		return ""
	}
	return strconv.FormatFloat(s.p.StopProperlyCoef, 'g', -1, 64)
}

func (s stopPenalty) Set(v string) error {
	c, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("bad coefficient %q", v)
	}
	s.p.StopProperly, s.p.StopProperlyCoef = true, c
	return nil
}
