package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/gorlhf/gorlhf/internal/data"
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
	aliases map[string]string // alias flag → canonical flag
}

func newTrainFlags(name string) *trainFlags {
	f := &trainFlags{fs: newFlagSet("train "+name, "train "+name+" [--config run.yaml] [flags]"), aliases: map[string]string{}}
	f.engine.register(f.fs)
	f.fs.StringVar(&f.config, "config", "", "YAML (or JSON) file setting any of these flags by name, nested or dotted; flags on the command line win")
	f.fs.BoolVar(&f.quiet, "quiet", false, "no progress bar or log on stderr (train.log and metrics.jsonl are still written)")
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

// registerData binds the --data.* flags.
func registerData(fs *flag.FlagSet, d *data.Config, sft bool) {
	fs.StringVar(&d.Dataset, "data.dataset", d.Dataset, "training data: comma-separated .jsonl, .jsonl.gz, .json or .parquet files")
	fs.IntVar(&d.MaxSamples, "data.max_samples", d.MaxSamples, "read at most this many records (0 = all)")
	fs.IntVar(&d.MaxLen, "data.max_len", d.MaxLen, "max tokens per sequence; longer ones keep their first max_len tokens, prompts longer than max_len-2 are skipped")
	if sft {
		fs.StringVar(&d.InputKey, "data.input_key", d.InputKey, "field holding the prompt (or the whole chat)")
		fs.StringVar(&d.OutputKey, "data.output_key", d.OutputKey, "field holding the response (empty with a chat template: the last turn)")
		fs.BoolVar(&d.Multiturn, "data.multiturn", d.Multiturn, "train on every assistant turn of the chat (needs --data.apply_chat_template)")
	} else {
		fs.StringVar(&d.PromptKey, "data.prompt_key", d.PromptKey, "field holding the prompt (empty: none)")
		fs.StringVar(&d.ChosenKey, "data.chosen_key", d.ChosenKey, "field holding the preferred response")
		fs.StringVar(&d.RejectedKey, "data.rejected_key", d.RejectedKey, "field holding the dispreferred response")
	}
	fs.StringVar(&d.InputTemplate, "data.input_template", d.InputTemplate, `plain-text prompt template, "{}" is the prompt (empty: none)`)
	fs.BoolVar(&d.ApplyChatTemplate, "data.apply_chat_template", d.ApplyChatTemplate, "render chats with the model's chat template")
	fs.StringVar(&d.TokenizerChatTemplate, "data.tokenizer_chat_template", d.TokenizerChatTemplate, "chat template to use instead: a .jinja file or the template text")
}

// registerTrain binds the shared training flags.
func registerTrain(fs *flag.FlagSet, c *train.Config) {
	fs.IntVar(&c.MicroBatchSize, "train.micro_batch_size", c.MicroBatchSize, "samples (pairs) per forward/backward pass")
	fs.IntVar(&c.BatchSize, "train.batch_size", c.BatchSize, "samples (pairs) per optimizer step; a multiple of the micro batch size (gradient accumulation)")
	fs.IntVar(&c.MaxEpochs, "train.max_epochs", c.MaxEpochs, "passes over the data")
	fs.IntVar(&c.MaxSteps, "train.max_steps", c.MaxSteps, "optimizer steps (0 = max_epochs × steps per epoch)")
	fs.Uint64Var(&c.Seed, "train.seed", c.Seed, "seed of the data order and of new weights")
	fs.IntVar(&c.MaxNonFinite, "train.max_nonfinite_steps", c.MaxNonFinite, "stop after this many consecutive steps with a NaN/Inf loss or gradient (each is skipped)")
	fs.IntVar(&c.StopAtStep, "train.stop_at_step", c.StopAtStep, "checkpoint and stop after this step, as if interrupted (0 = off)")
	fs.BoolVar(&c.Packing, "ds.packing_samples", c.Packing, "pack samples into shared rows with per-sample attention instead of padding")

	fs.Float64Var(&c.Optim.LR, "adam.lr", c.Optim.LR, "peak learning rate")
	fs.Var(betas{&c.Optim.Adam.Beta1, &c.Optim.Adam.Beta2}, "adam.betas", "AdamW betas, as \"0.9,0.95\"")
	fs.Float64Var(&c.Optim.Adam.Eps, "adam.eps", c.Optim.Adam.Eps, "AdamW epsilon")
	fs.Float64Var(&c.Optim.Adam.WeightDecay, "adam.weight_decay", c.Optim.Adam.WeightDecay, "AdamW decoupled weight decay (not on biases and norms)")
	fs.Var(&c.Optim.Scheduler, "lr_scheduler", "learning-rate schedule: cosine_with_min_lr or constant")
	fs.Float64Var(&c.Optim.WarmupRatio, "lr_warmup_ratio", c.Optim.WarmupRatio, "linear warm-up, as a fraction of all steps")
	fs.Float64Var(&c.Optim.MinLRRatio, "min_lr_ratio", c.Optim.MinLRRatio, "cosine floor, as a fraction of the peak")
	fs.Float64Var(&c.Optim.MaxNorm, "max_norm", c.Optim.MaxNorm, "clip the global gradient norm to this (0 = off)")

	fs.StringVar(&c.Eval.Dataset, "eval.dataset", c.Eval.Dataset, "evaluation data (same formats and keys as --data.dataset)")
	fs.IntVar(&c.Eval.Steps, "eval.steps", c.Eval.Steps, "evaluate every N steps (-1 = once per epoch); the run always ends with one")

	fs.StringVar(&c.Ckpt.OutputDir, "ckpt.output_dir", c.Ckpt.OutputDir, "run folder: final model, metrics.jsonl, train.log, tensorboard/, plots")
	fs.StringVar(&c.Ckpt.Path, "ckpt.path", c.Ckpt.Path, "checkpoint folder (default <output_dir>/checkpoints)")
	fs.IntVar(&c.Ckpt.SaveSteps, "ckpt.save_steps", c.Ckpt.SaveSteps, "checkpoint every N steps (-1 = never; stopping still saves one)")
	fs.IntVar(&c.Ckpt.MaxNum, "ckpt.max_num", c.Ckpt.MaxNum, "checkpoints kept")
	fs.BoolVar(&c.Ckpt.LoadEnable, "ckpt.load_enable", c.Ckpt.LoadEnable, "resume from the latest checkpoint in --ckpt.path")

	fs.IntVar(&c.Logger.LoggingSteps, "logger.logging_steps", c.Logger.LoggingSteps, "write train metrics every N steps")
	fs.StringVar(&c.Logger.TensorboardDir, "logger.tensorboard_dir", c.Logger.TensorboardDir, "TensorBoard event folder (default <output_dir>/tensorboard)")
}

// registerTrainAliases adds the PPO-style spellings of the optimizer flags.
func registerTrainAliases(f *trainFlags) {
	for _, name := range []string{"lr", "betas", "eps", "weight_decay"} {
		f.alias("actor.adam."+name, "adam."+name)
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
