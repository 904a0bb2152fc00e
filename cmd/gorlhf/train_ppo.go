package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/env"
	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/placement"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/role/openai"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// runTrainPPO is `gorlhf train ppo`: OpenRLHF's train_ppo_ray with every
// advantage estimator (PPO with a critic, REINFORCE++, RLOO, GRPO, …).
func runTrainPPO(ctx context.Context, args []string) error {
	c, err := parsePPO(args)
	if err != nil {
		return err
	}
	if c.place.Launcher != launch.Inproc {
		return runPlaced(ctx, c)
	}
	return runPPO(ctx, c.cfg, c.f.quiet)
}

// runPPO loads the models, builds the in-process roles and trains.
func runPPO(ctx context.Context, cfg ppo.Config, quiet bool) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	te, err := ppoSetup(cfg, quiet)
	if err != nil {
		return err
	}
	want := inproc.AllRoles()
	want.Rollout = cfg.Rollout.Backend != ppo.BackendOpenAI // else the engines of --rollout.urls
	roles, err := ppoBuilder(cfg, te)(want)
	if err != nil {
		return err
	}
	defer roles.Close()
	rt := ppoRuntime(cfg, te)
	rt.MaxPositions = roles.MaxPositions()
	closeRollout, err := withOpenAIRollout(cfg, te, func(r *openai.Rollout, limit int) { roles.Rollout, rt.MaxPositions = r, limit })
	if err != nil {
		return err
	}
	defer closeRollout()
	if rt.Agent, err = remoteAgent(cfg); err != nil {
		return err
	}
	t, err := ppo.New(ctx, cfg, roles.Set, rt)
	if err != nil {
		return err
	}
	return t.Run(ctx)
}

// ppoSetup opens the actor's bundle (model, tokenizer, chat template).
func ppoSetup(cfg ppo.Config, quiet bool) (train.Setup, error) {
	dc := data.Config{ApplyChatTemplate: cfg.Data.ApplyChatTemplate, TokenizerChatTemplate: cfg.Data.TokenizerChatTemplate}
	return trainSetup(cfg.Actor.Model, dc, quiet)
}

// ppoBuilder builds, in this process, the roles a selection asks for:
// every role for an in-process run, a placement group's in a worker.
func ppoBuilder(cfg ppo.Config, te train.Setup) placement.Builder {
	return func(w inproc.Want) (*inproc.Roles, error) { return inproc.BuildSome(cfg.RoleSpec(), te, loadModel, w) }
}

// ppoRuntime is what the driver needs besides its roles; the caller sets
// MaxPositions and, for placed roles, Overlap and SyncWeights.
func ppoRuntime(cfg ppo.Config, te train.Setup) ppo.Runtime {
	return ppo.Runtime{Tok: te.Tok, Template: te.Template, Console: te.Console, TTY: te.TTY,
		StopIDs: te.StopIDs, NoBOS: !te.AddBOS}
}

// remoteAgent opens --agent.env remote with the key from the environment
// ($GORLHF_ENV_API_KEY, else $GORLHF_API_KEY, as serve env reads them;
// nil for any other environment: ppo opens the built-ins itself).
func remoteAgent(cfg ppo.Config) (env.Factory, error) {
	key, _ := apiKey("", envAPIKeyEnv)
	if cfg.Agent.Env != "remote" || key == "" {
		return nil, nil
	}
	f, err := env.OpenRemote(cfg.Agent.EnvArgs, key)
	if err != nil {
		return nil, fmt.Errorf("--agent.env_args: %w", err)
	}
	return f, nil
}

// registerPPO binds every flag of `gorlhf train ppo` to cfg; the names
// come from the config's flag tags (package cfgflag).
func registerPPO(fs *flag.FlagSet, c *ppo.Config) {
	b := cfgflag.NewBinder(fs, c)
	b.Var(&c.Actor.Model, "policy to train: HF folder, llama2.c file, cached Hub id, or stories260K (embedded)")
	registerOptim(b, "actor", &c.Actor.Optim)
	pl := &c.Actor.PolicyLoss
	b.Under(pl, "eps_clip", epsClip{pl}, "PPO clip ε (sets both ε_low and ε_high)")
	b.Under(pl, "eps_clip_low_high", floatPair{&pl.ClipLow, &pl.ClipHigh}, `asymmetric clip "ε_low,ε_high" (DAPO clip-higher, e.g. 0.2,0.28)`)
	b.Var(&pl.DualClip, "dual-clip constant c > 1 (0 = off)")
	b.Var(&pl.Type, "ppo (per-token ratio) or gspo (per-sequence ratio)")
	b.Var(&pl.Aggregation, "token_mean or seq_mean_token_mean")
	b.Var(&c.Actor.EntropyCoef, "entropy bonus weight (0 = none)")
	b.Var(&c.Actor.GradientCheckpointing, "recompute the actor's transformer block activations in its backward pass instead of keeping them (less memory, about one more forward pass; same gradients)")

	b.Var(&c.Critic.Model, "critic (gae only): a reward model or causal LM; default: the reward model, else the actor")
	registerOptim(b, "critic", &c.Critic.Optim)
	b.Var(&c.Critic.ValueLoss.Clip, "value clipping ε_v (0 = off)")
	b.Var(&c.Critic.FreezingSteps, "iterations that train only the critic (actor frozen) at the start")
	b.Var(&c.Critic.GradientCheckpointing, "recompute the critic's transformer block activations in its backward pass instead of keeping them")

	registerReward(b, &c.Reward, &c.Algo.Advantage)

	b.Var(&c.Rollout.BatchSize, "prompts per iteration")
	b.Var(&c.Algo.Advantage.SamplesPerPrompt, "samples per prompt (group estimators need > 1)")
	b.Var(&c.Rollout.MaxNewTokens, "most tokens per response")
	b.Var(&c.Rollout.Temperature, "sampling temperature")
	b.Var(&c.Rollout.TopP, "nucleus sampling mass (1 = off)")
	b.Var(&c.Rollout.TopK, "top-k sampling (0 = off)")
	b.Var(&c.Rollout.MicroBatchSize, "sequences per inference pass of actor, reference and critic (0 = all)")
	b.Value(&c.Rollout.Stop, stopList{&c.Rollout.Stop}, `stop strings besides EOS: a JSON list such as '["\n", "</answer>"]', or one string (\n and \t escapes understood)`)
	b.Var(&c.Rollout.KVCacheMB, "rollout engine KV-cache budget in MiB (0 = 1024)")
	b.Var(&c.Rollout.DType, "rollout engine weight format: f32, bf16 or f16 (16-bit copies of the actor's weights for decoding; training stays f32)")
	b.Var(&c.Rollout.EnablePrefixCaching, "keep KV blocks across rollout calls and reuse them for prompts with the same prefix (multi-turn episodes, shared prompts; OpenRLHF's --vllm.enable_prefix_caching)")
	registerRolloutBackend(b, &c.Rollout)

	a := &c.Algo.Advantage
	b.Var(&a.Estimator, "gae, reinforce, reinforce_baseline, rloo, group_norm (GRPO) or dr_grpo")
	b.Var(&a.Gamma, "discount γ")
	b.Var(&a.Lambda, "GAE λ")
	b.Var(&a.NoStdNorm, "whitening subtracts the mean only")
	k := &c.Algo.KL
	b.Var(&k.InitCoef, "KL coefficient β (0 = no reference model)")
	b.Var(&k.Target, "adaptive KL target (0 = fixed β)")
	b.Var(&k.Horizon, "adaptive KL horizon in samples")
	b.Var(&k.Estimator, "k1, k2 or k3")
	b.Var(&k.UseLoss, "KL as a loss term instead of in the reward (GRPO)")
	df := &c.Algo.DynamicFilter
	b.Var(&df.Enable, "DAPO dynamic sampling: drop prompts whose samples all score the same (or whose mean score is outside the range) and sample more prompts to fill the batch")
	b.Value(&df.Range, floatPair{&df.Range.Low, &df.Range.High}, `dynamic filtering keeps a group whose mean score is inside the open interval "lo,hi"`)
	b.Var(&df.MaxRounds, "dynamic filtering: generation rounds per iteration at most; a batch still not full trains on the groups kept")
	ic := &c.Algo.ISCorrection
	b.Var(&ic.Enable, "off-policy correction: weight each token's policy loss by π_old/π_rollout, the actor's log-prob over the rollout engine's, bounded (truncated importance sampling; not with --train.engine_logprobs)")
	b.Var(&ic.Type, "tis (token clamp), icepop (token filter), seq-mask-tis (filter on the sequence's geometric mean), or <level>-<mode> with level token, seq, geo and mode mask, clip, trunc")
	b.Value(&ic.Threshold, floatPair{&ic.Threshold.Lo, &ic.Threshold.Hi}, `IS correction bounds "lo,hi" (trunc reads only hi)`)

	ag := &c.Agent
	b.Var(&ag.Env, "multi-turn rollouts with a built-in environment that gives the rewards (no --reward.*): "+strings.Join(env.Names(), "; "))
	b.Var(&ag.EnvArgs, `environment settings, "key=value,key=value"`)
	b.Var(&ag.MaxTurns, "end an episode after this many actions (counted as truncated)")

	d := &c.Data
	b.Var(&d.PromptDataset, "prompts: comma-separated .jsonl, .json or .parquet files")
	b.Var(&d.InputKey, "field holding the prompt (text or a chat)")
	b.Var(&d.LabelKey, "field passed to rule and remote rewards as the label")
	b.Var(&d.MaxSamples, "read at most this many prompts (0 = all)")
	b.Var(&d.MaxLen, "token budget of prompt + response; longer prompts are skipped")
	b.Var(&d.InputTemplate, `plain-text prompt template, "{}" is the prompt`)
	b.Var(&d.ApplyChatTemplate, "render prompts with the model's chat template")
	b.Var(&d.TokenizerChatTemplate, "chat template to use instead: a .jinja file or the template text")

	registerPPOTrain(b, c)
}

// registerPPOTrain binds the train, eval, ckpt and logger flags.
func registerPPOTrain(b *cfgflag.Binder, c *ppo.Config) {
	t := &c.Train
	b.Var(&t.BatchSize, "samples per optimizer step")
	b.Var(&t.MicroBatchSize, "samples per forward/backward (the rest is gradient accumulation)")
	b.Var(&t.MaxEpochs, "PPO epochs over each rollout batch")
	b.Var(&t.NumEpisodes, "passes over the prompt dataset")
	b.Var(&t.MaxIterations, "stop after this many iterations (0 = num_episodes × prompts / rollout.batch_size)")
	b.Var(&t.Seed, "seed of prompt order, sampling, shuffles and new heads")
	b.Var(&t.MaxNonFinite, "stop after this many consecutive non-finite optimizer steps (each is skipped)")
	b.Var(&t.StopAtStep, "checkpoint and stop after this iteration, as if interrupted (0 = off)")
	b.Var(&t.EngineLogProbs, "use the rollout engine's log-probs as π_old instead of recomputing them with the actor")
	registerPPOAsync(b, &t.Async)
	b.Var(&c.DS.PackingSamples, "pack the sequences of each actor, reference and critic pass into shared rows (per-sample attention) instead of padding each to the longest")
	b.Var(&c.DS.ZeroStage, "ZeRO stage of the actor and critic on several data-parallel ranks (--actor./--critic.num_workers_per_node): 0 replicates everything, 1 shards the AdamW moments, 2 also the gradients, 3 also the weights (same results at every stage)")
	registerLoRA(b, &c.DS.LoRA)

	e := &c.Eval
	b.Var(&e.Dataset, "held-out prompts (same keys as --data.prompt_dataset)")
	b.Var(&e.Steps, "evaluate every N iterations (always at the start and the end)")
	b.Var(&e.NSamples, "samples per eval prompt")
	b.Var(&e.Temperature, "eval sampling temperature (0 = greedy)")
	b.Var(&e.MaxSamples, "read at most this many eval prompts (0 = all)")

	b.Var(&c.Ckpt.OutputDir, "run folder: final actor (critic in critic/), metrics.jsonl, train.log, plots, report.html")
	b.Var(&c.Ckpt.Path, "checkpoint folder (default <output_dir>/checkpoints; _actor and _critic inside)")
	b.Var(&c.Ckpt.SaveSteps, "checkpoint every N iterations (-1 = never; stopping still saves one)")
	b.Var(&c.Ckpt.MaxNum, "checkpoints kept")
	b.Var(&c.Ckpt.LoadEnable, "resume from the latest checkpoint in --ckpt.path")
	b.Var(&c.Ckpt.Overwrite, "start again in a used run folder: remove the earlier run's outputs and checkpoints first")
	b.Var(&c.Logger.LoggingSteps, "write metrics every N iterations (and the last)")
	b.Var(&c.Logger.TensorboardDir, "TensorBoard event folder (default <output_dir>/tensorboard)")
}

// registerReward binds the --reward.* flags.
func registerReward(b *cfgflag.Binder, r *ppo.RewardConfig, a *rl.AdvantageConfig) {
	b.Var(&r.Model, "reward model folder (*ForSequenceClassification, e.g. from gorlhf train rm)")
	b.Value(&r.RemoteURLs, urlList{&r.RemoteURLs}, "reward server URL(s), comma-separated (OpenRLHF /get_reward protocol)")
	b.Var(&r.Rule.Kind, "built-in grader: math, exact, regex, length or format (labels from --data.label_key)")
	b.Var(&r.Rule.Pattern, "regular expression of the regex and format graders")
	b.Var(&r.Rule.FoldCase, "exact grader ignores case")
	b.Var(&r.Rule.Length.Target, "length grader: the length that earns 1")
	b.Var(&r.Rule.Length.Unit, "length grader: chars, words or tokens")
	b.Var(&r.Normalize, "normalise reward-model scores with the mean/std in its config.json")
	b.Value(&r.PRMAggregation, prmAggregation{&r.PRMAggregation}, "with a process reward model (a folder with prm.json, from train prm): how its step scores become the reward: min, prod, mean or last (default min)")
	b.Value(&a.RewardClip, floatPair{&a.RewardClip.Lo, &a.RewardClip.Hi}, `clip rewards to "lo,hi" before KL shaping`)
	b.Var(&r.Length.OverlongBufferLen, "DAPO overlong buffer in tokens (0 = off)")
	b.Var(&r.Length.OverlongFactor, "DAPO overlong penalty at max_new_tokens")
	b.Value(&r.Length.StopProperlyCoef, stopPenalty{&r.Length}, "ProRL: scale a truncated response's reward by this (in [0,1]), or replace it when negative")
	b.Var(&r.BatchSize, "sequences per reward-model forward pass (0 = 16)")
	b.Value(&r.Mix, mixWeights{&r.Mix}, `weights when several reward sources are set, e.g. "model=1,rule=0.5" (parts: model, remote, rule; unlisted = 1)`)
	b.Var(&r.ScoreFrom, "with several sources: the part whose score dynamic filtering compares (e.g. rule); default: the weighted sum")
}

// registerOptim binds one role's --<role>.adam.* and schedule flags.
func registerOptim(b *cfgflag.Binder, role string, o *train.OptimConfig) {
	b.Var(&o.LR, role+" peak learning rate")
	b.Under(&o.Adam, "adam.betas", betas{&o.Adam.Beta1, &o.Adam.Beta2}, role+` AdamW betas, as "0.9,0.95"`)
	b.Var(&o.Adam.Eps, role+" AdamW epsilon")
	b.Var(&o.Adam.WeightDecay, role+" AdamW weight decay")
	b.Var(&o.Scheduler, role+" LR schedule: cosine_with_min_lr or constant")
	b.Var(&o.WarmupRatio, role+" warm-up as a fraction of its optimizer steps")
	b.Var(&o.MinLRRatio, role+" cosine floor as a fraction of the peak")
	b.Var(&o.MaxNorm, role+" gradient-norm clip (0 = off)")
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
