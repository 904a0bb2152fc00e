// Package train is the plumbing every trainer shares, and nothing else:
// the guarded optimizer step (StepGuard: gradient norm, skipping of
// non-finite steps, clipping, AdamW) and its learning-rate schedule
// (Plan); the seeded data stream; checkpoints that resume bit for bit and
// the rule for when to save and stop (CheckpointRule); the run's outputs
// (Outputs: progress bar, metrics.jsonl, TensorBoard, PNG curves, a
// structured log); and the run loop itself (Run). Session puts these
// together for the offline trainers; the PPO driver uses the same parts.
//
// What one step computes (SFT, reward model, DPO) is written out in each
// trainer package; a trainer hands its step to Run through a Session:
//
//	step := func(ctx context.Context) error {
//		micro := s.NextBatch()                // 1) indices of this step's micro-batches
//		... forward/backward per micro-batch  // 2) the algorithm (trainer code)
//		up, err := s.Update(loss)             // 3) non-finite check, clip, AdamW at the scheduled LR
//		return s.LogTrain(metrics, tokens, headline)
//	}
//	return train.Run(ctx, s.Loop(step, evaluate)) // 4) evaluate, checkpoint, stop on request, finish
package train

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/optim"
)

// Config holds the knobs shared by the offline trainers. Field comments
// name the flag (OpenRLHF's dotted names) and what zero means.
type Config struct {
	MicroBatchSize int    `flag:"train.micro_batch_size"` // samples (pairs for RM/DPO) per forward/backward
	BatchSize      int    `flag:"train.batch_size"`       // samples per optimizer step; a multiple of MicroBatchSize (the rest is gradient accumulation)
	MaxEpochs      int    `flag:"train.max_epochs"`       // passes over the data
	MaxSteps       int    `flag:"train.max_steps"`        // optimizer steps; 0 = MaxEpochs × steps per epoch, otherwise epochs continue until reached
	Seed           uint64 `flag:"train.seed"`             // data order and any initialisation
	// Packing packs micro-batch samples into rows of at most max_len tokens
	// with per-sample attention (--ds.packing_samples) instead of padding.
	Packing bool `flag:"ds.packing_samples"`
	// ZeroStage shards the training state over data-parallel ranks
	// (DeepSpeed's stages, package zero): 0 replicates everything, 1
	// shards the AdamW moments, 2 the gradients too, 3 the parameters
	// too. Above 0 a run of one process uses the sharding engine as well.
	ZeroStage int `flag:"ds.zero_stage"`
	// MaxNonFinite stops training after this many consecutive steps whose
	// loss or gradient norm is NaN or ±Inf (each is skipped: no update).
	MaxNonFinite int `flag:"train.max_nonfinite_steps"`
	// StopAtStep checkpoints and stops after this optimizer step, as if
	// interrupted (0: off). It is not part of what a resume compares.
	StopAtStep int `json:"-" flag:"train.stop_at_step"`

	// LoRA trains low-rank adapters on a frozen base instead of every
	// weight (--ds.lora.*; rank 0 = off). One process only: ZeRO stages
	// above 0 and data-parallel ranks are refused.
	LoRA lora.Config `flag:"ds.lora"`

	Optim  OptimConfig
	Eval   EvalConfig   `flag:"eval"`
	Ckpt   CkptConfig   `flag:"ckpt"`
	Logger LoggerConfig `flag:"logger"`
}

// OptimConfig is AdamW plus its schedule and clipping (OpenRLHF's --adam.*,
// --lr_scheduler, --lr_warmup_ratio, --min_lr_ratio, --max_norm).
type OptimConfig struct {
	Adam        optim.Config
	LR          float64            `flag:"adam.lr"`         // peak learning rate
	Scheduler   optim.ScheduleKind `flag:"lr_scheduler"`    // cosine_with_min_lr or constant
	WarmupRatio float64            `flag:"lr_warmup_ratio"` // warm-up steps as a fraction of all steps
	MinLRRatio  float64            `flag:"min_lr_ratio"`    // cosine floor as a fraction of LR
	MaxNorm     float64            `flag:"max_norm"`        // global gradient-norm clip; 0 = off
}

// EvalConfig controls evaluation.
type EvalConfig struct {
	Dataset string `flag:"dataset"` // comma-separated files; "" = no evaluation
	Steps   int    `flag:"steps"`   // evaluate every N steps; −1 = once per epoch (OpenRLHF); the run always ends with one
}

// CkptConfig controls checkpoints and the final model.
type CkptConfig struct {
	OutputDir  string `flag:"output_dir"`           // the run folder: final model, metrics, logs, plots
	Path       string `flag:"path"`                 // checkpoint folder (global_step<N> subfolders); "" = <OutputDir>/checkpoints
	SaveSteps  int    `flag:"save_steps"`           // checkpoint every N steps; −1 = never (a stop still saves one)
	MaxNum     int    `flag:"max_num"`              // checkpoints kept (oldest removed first)
	LoadEnable bool   `json:"-" flag:"load_enable"` // resume from the latest checkpoint in Path when there is one (not compared on resume)
	// Overwrite starts again in a used run folder: an earlier run's
	// outputs and checkpoints are removed first (see Claim). Without it
	// (or LoadEnable) a run refuses a folder that is not empty.
	Overwrite bool `json:"-" flag:"overwrite"`
}

// Validate checks the optimizer settings. Messages name each flag with
// its allowed range; prefix is the group the settings sit in ("" for the
// offline trainers' --adam.lr, "actor" for PPO's --actor.adam.lr). NaN
// and ±Inf are out of every range.
func (o OptimConfig) Validate(prefix string) error {
	var errs []error
	flag := func(name string) string {
		if prefix != "" {
			name = prefix + "." + name
		}
		return "--" + name
	}
	name := func(field any) string { return flag(cfgflag.Name(&o, field)) }
	bad := func(field any, want string, v float64) {
		errs = append(errs, fmt.Errorf("%s must be %s, got %g", name(field), want, v))
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	if !finite(o.LR) || o.LR < 0 {
		bad(&o.LR, "a finite number ≥ 0", o.LR)
	}
	if !(o.WarmupRatio >= 0 && o.WarmupRatio <= 1) {
		bad(&o.WarmupRatio, "in [0, 1]", o.WarmupRatio)
	}
	if !(o.MinLRRatio >= 0 && o.MinLRRatio <= 1) {
		bad(&o.MinLRRatio, "in [0, 1]", o.MinLRRatio)
	}
	if !finite(o.MaxNorm) || o.MaxNorm < 0 {
		bad(&o.MaxNorm, "a finite number ≥ 0 (0 = no clipping)", o.MaxNorm)
	}
	if o.Scheduler != optim.Constant && o.Scheduler != optim.CosineWithMinLR {
		errs = append(errs, fmt.Errorf("%s must be %s or %s, got %q", name(&o.Scheduler), optim.CosineWithMinLR, optim.Constant, o.Scheduler))
	}
	a := o.Adam
	if !(a.Beta1 >= 0 && a.Beta1 < 1 && a.Beta2 >= 0 && a.Beta2 < 1) {
		errs = append(errs, fmt.Errorf("%s must both be in [0, 1), got %g,%g", flag("adam.betas"), a.Beta1, a.Beta2))
	}
	if !finite(a.Eps) || a.Eps <= 0 {
		bad(&o.Adam.Eps, "a finite number > 0", a.Eps)
	}
	if !finite(a.WeightDecay) || a.WeightDecay < 0 {
		bad(&o.Adam.WeightDecay, "a finite number ≥ 0", a.WeightDecay)
	}
	return errors.Join(errs...)
}

// LoggerConfig controls the run's outputs.
type LoggerConfig struct {
	LoggingSteps   int    `flag:"logging_steps"`   // write train metrics every N steps
	TensorboardDir string `flag:"tensorboard_dir"` // event files; "" = <output_dir>/tensorboard
}

// DefaultConfig returns OpenRLHF's defaults for train_sft (trainers
// adjust LR, epochs and batch sizes to their own).
func DefaultConfig() Config {
	return Config{
		MicroBatchSize: 8, BatchSize: 128, MaxEpochs: 2, Seed: 42, MaxNonFinite: 5,
		Optim: OptimConfig{Adam: optim.DefaultConfig(), LR: 5e-6, Scheduler: optim.CosineWithMinLR,
			WarmupRatio: 0.03, MinLRRatio: 0.1, MaxNorm: 1.0},
		Eval:   EvalConfig{Steps: -1},
		Ckpt:   CkptConfig{OutputDir: "./ckpt", SaveSteps: -1, MaxNum: 3},
		Logger: LoggerConfig{LoggingSteps: 1},
		LoRA:   lora.DefaultConfig(),
	}
}

// CheckpointDir is Ckpt.Path, or <OutputDir>/checkpoints when it is empty.
func (c Config) CheckpointDir() string {
	if c.Ckpt.Path != "" {
		return c.Ckpt.Path
	}
	return filepath.Join(c.Ckpt.OutputDir, "checkpoints")
}

// Claim is the run folder this configuration asks for (ClaimRunDir).
func (c Config) Claim() Claim {
	return Claim{Dir: c.Ckpt.OutputDir, Checkpoints: c.CheckpointDir(), Resume: c.Ckpt.LoadEnable, Overwrite: c.Ckpt.Overwrite}
}

// Accumulation is the number of micro-batches per optimizer step.
func (c Config) Accumulation() int { return c.BatchSize / c.MicroBatchSize }

// Validate checks ranges and combinations; messages name the flags.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("train: "+format, args...)) }
	if c.ZeroStage < 0 || c.ZeroStage > 3 {
		add("ds.zero_stage must be 0, 1, 2 or 3, got %d", c.ZeroStage)
	}
	if c.MicroBatchSize < 1 || c.BatchSize < 1 || c.BatchSize%c.MicroBatchSize != 0 {
		add("batch_size (%d) must be a positive multiple of micro_batch_size (%d)", c.BatchSize, c.MicroBatchSize)
	}
	if c.MaxEpochs < 1 && c.MaxSteps < 1 {
		add("need max_epochs ≥ 1 or max_steps ≥ 1")
	}
	if c.MaxSteps < 0 || c.StopAtStep < 0 {
		add("max_steps and stop_at_step must be ≥ 0")
	}
	if c.MaxNonFinite < 1 {
		add("max_nonfinite_steps must be ≥ 1, got %d", c.MaxNonFinite)
	}
	if err := c.Optim.Validate(""); err != nil {
		errs = append(errs, fmt.Errorf("train: %w", err))
	}
	if c.Eval.Steps == 0 || c.Eval.Steps < -1 {
		add("eval.steps must be ≥ 1 or −1 (once per epoch), got %d", c.Eval.Steps)
	}
	if c.Ckpt.OutputDir == "" {
		add("ckpt.output_dir must be set")
	}
	if c.Ckpt.SaveSteps == 0 || c.Ckpt.SaveSteps < -1 || c.Ckpt.MaxNum < 1 {
		add("ckpt.save_steps must be ≥ 1 or −1 and ckpt.max_num ≥ 1 (got %d, %d)", c.Ckpt.SaveSteps, c.Ckpt.MaxNum)
	}
	if c.Ckpt.LoadEnable && c.Ckpt.Overwrite {
		add("--ckpt.load_enable (resume) and --ckpt.overwrite (start again) exclude each other")
	}
	if c.Logger.LoggingSteps < 1 {
		add("logger.logging_steps must be ≥ 1")
	}
	if err := c.LoRA.Validate("ds.lora"); err != nil {
		errs = append(errs, fmt.Errorf("train: %w", err))
	}
	if c.LoRA.Enabled() && c.ZeroStage > 0 {
		add("--ds.lora.rank %d with --ds.zero_stage %d: LoRA trains in one process at stage 0 (the adapters and their AdamW state are a few MB; ZeRO would shard the frozen base)", c.LoRA.Rank, c.ZeroStage)
	}
	return errors.Join(errs...)
}
