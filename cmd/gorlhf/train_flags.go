package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/train"
)

// trainFlags is the flag set of one trainer with the pieces every trainer
// shares: the engine flags, --config, --quiet, and the aliases YAML keys
// may also use.
type trainFlags struct {
	fs      *flag.FlagSet
	engine  engineFlags
	config  string
	quiet   bool
	dp      dpFlags           // data-parallel ranks (sft, rm, dpo: withDP)
	aliases map[string]string // alias flag → canonical flag
}

func newTrainFlags(name string) *trainFlags {
	f := &trainFlags{fs: newFlagSet("train "+name, "train "+name+" [--config run.yaml] [flags]"), aliases: map[string]string{}}
	f.engine.register(f.fs)
	f.fs.StringVar(&f.config, "config", "", "YAML (or JSON) file setting any of these flags by name, nested or dotted; flags on the command line win")
	f.fs.BoolVar(&f.quiet, "quiet", false, "no progress bar or log on stderr (train.log and metrics.jsonl are still written)")
	return f
}

// withDP adds the data-parallel flags of the offline trainers.
func (f *trainFlags) withDP() *trainFlags {
	f.dp.register(f.fs)
	return f
}

// alias registers name as another spelling of canonical (same variable).
func (f *trainFlags) alias(name, canonical string) {
	fl := f.fs.Lookup(canonical)
	f.fs.Var(fl.Value, name, "same as --"+canonical)
	f.aliases[name] = canonical
}

// parse reads the command line, then the --config file for every flag
// the command line did not set, then applies the engine flags.
func (f *trainFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags are --name value)", f.fs.Arg(0))
	}
	if f.config != "" {
		if err := applyConfigFile(f.fs, f.config, f.aliases); err != nil {
			return err
		}
	}
	f.engine.quiet = f.quiet
	return f.engine.apply()
}

// registerData binds the --data.* flags (names from data.Config's tags).
func registerData(b *cfgflag.Binder, d *data.Config, sft bool) {
	b.Var(&d.Dataset, "training data: comma-separated .jsonl, .jsonl.gz, .json or .parquet files")
	b.Var(&d.MaxSamples, "read at most this many records (0 = all)")
	b.Var(&d.MaxLen, "max tokens per sequence; longer ones keep their first max_len tokens, prompts longer than max_len-2 are skipped")
	if sft {
		b.Var(&d.InputKey, "field holding the prompt (or the whole chat)")
		b.Var(&d.OutputKey, "field holding the response (empty with a chat template: the last turn)")
		b.Var(&d.Multiturn, "train on every assistant turn of the chat (needs "+cfgflag.Flag(d, &d.ApplyChatTemplate)+")")
	} else {
		b.Var(&d.PromptKey, "field holding the prompt (empty: none)")
		b.Var(&d.ChosenKey, "field holding the preferred response")
		b.Var(&d.RejectedKey, "field holding the dispreferred response")
	}
	b.Var(&d.InputTemplate, `plain-text prompt template, "{}" is the prompt (empty: none)`)
	b.Var(&d.ApplyChatTemplate, "render chats with the model's chat template")
	b.Var(&d.TokenizerChatTemplate, "chat template to use instead: a .jinja file or the template text")
}

// registerTrain binds the shared training flags (names from train.Config's
// tags).
func registerTrain(b *cfgflag.Binder, c *train.Config) {
	b.Var(&c.MicroBatchSize, "samples (pairs) per forward/backward pass")
	b.Var(&c.BatchSize, "samples (pairs) per optimizer step; a multiple of the micro batch size (gradient accumulation)")
	b.Var(&c.MaxEpochs, "passes over the data")
	b.Var(&c.MaxSteps, "optimizer steps (0 = max_epochs × steps per epoch)")
	b.Var(&c.Seed, "seed of the data order and of new weights")
	b.Var(&c.MaxNonFinite, "stop after this many consecutive steps with a NaN/Inf loss or gradient (each is skipped)")
	b.Var(&c.StopAtStep, "checkpoint and stop after this step, as if interrupted (0 = off)")
	b.Var(&c.Packing, "pack samples into shared rows with per-sample attention instead of padding")
	b.Var(&c.ZeroStage, "ZeRO stage of the data-parallel ranks: 0 replicates the training state, 1 shards the AdamW moments, 2 also the gradients, 3 also the parameters (docs/ZERO.md)")

	registerLoRA(b, &c.LoRA)

	o := &c.Optim
	b.Var(&o.LR, "peak learning rate")
	b.Under(&o.Adam, "adam.betas", betas{&o.Adam.Beta1, &o.Adam.Beta2}, "AdamW betas, as \"0.9,0.95\"")
	b.Var(&o.Adam.Eps, "AdamW epsilon")
	b.Var(&o.Adam.WeightDecay, "AdamW decoupled weight decay (not on biases and norms)")
	b.Var(&o.Scheduler, "learning-rate schedule: cosine_with_min_lr or constant")
	b.Var(&o.WarmupRatio, "linear warm-up, as a fraction of all steps")
	b.Var(&o.MinLRRatio, "cosine floor, as a fraction of the peak")
	b.Var(&o.MaxNorm, "clip the global gradient norm to this (0 = off)")

	b.Var(&c.Eval.Dataset, "evaluation data (same formats and keys as --data.dataset)")
	b.Var(&c.Eval.Steps, "evaluate every N steps (-1 = once per epoch); the run always ends with one")

	b.Var(&c.Ckpt.OutputDir, "run folder: final model, metrics.jsonl, train.log, tensorboard/, plots")
	b.Var(&c.Ckpt.Path, "checkpoint folder (default <output_dir>/checkpoints)")
	b.Var(&c.Ckpt.SaveSteps, "checkpoint every N steps (-1 = never; stopping still saves one)")
	b.Var(&c.Ckpt.MaxNum, "checkpoints kept")
	b.Var(&c.Ckpt.LoadEnable, "resume from the latest checkpoint in --ckpt.path")
	b.Var(&c.Ckpt.Overwrite, "start again in a used run folder: remove the earlier run's outputs and checkpoints first")

	b.Var(&c.Logger.LoggingSteps, "write train metrics every N steps")
	b.Var(&c.Logger.TensorboardDir, "TensorBoard event folder (default <output_dir>/tensorboard)")
}

// registerLoRA binds the --ds.lora.* flags (names from lora.Config's
// tags, under the group the config puts them in).
func registerLoRA(b *cfgflag.Binder, c *lora.Config) {
	b.Var(&c.Rank, "LoRA rank r: train low-rank adapters on a frozen base instead of every weight (0 = off; docs/LORA.md)")
	b.Var(&c.Alpha, "LoRA alpha: the adapters' output is scaled by alpha/r")
	b.Var(&c.Dropout, "dropout on the LoRA adapters' input while training")
	b.Var(&c.TargetModules, "modules that get adapters, comma-separated (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; GPT-2: c_attn,c_proj,c_fc) or all-linear")
}

// registerTrainAliases adds the PPO-style spellings of the optimizer
// flags: actor.adam.lr for adam.lr, and so on.
func registerTrainAliases(f *trainFlags) {
	var names []string
	f.fs.VisitAll(func(fl *flag.Flag) {
		if strings.HasPrefix(fl.Name, "adam.") {
			names = append(names, fl.Name)
		}
	})
	for _, name := range names {
		f.alias("actor."+name, name)
	}
}

// betas is the flag.Value of --adam.betas.
type betas struct{ b1, b2 *float64 }

func (b betas) String() string {
	if b.b1 == nil {
		return ""
	}
	return fmt.Sprintf("%g,%g", *b.b1, *b.b2)
}

func (b betas) Set(s string) error {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '[' || r == ']' })
	if len(parts) != 2 {
		return fmt.Errorf("want two betas like 0.9,0.95, got %q", s)
	}
	v1, err1 := strconv.ParseFloat(parts[0], 64)
	v2, err2 := strconv.ParseFloat(parts[1], 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bad betas %q", s)
	}
	*b.b1, *b.b2 = v1, v2
	return nil
}
