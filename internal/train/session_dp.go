package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/zero"
)

// openOutputs claims the run folder (or takes the one the caller claimed)
// on rank 0; the other ranks of a data-parallel run write no run files:
// their log goes to their console (the launcher keeps it).
func (s *Session) openOutputs() error {
	if s.Rank() != 0 {
		s.out = ConsoleOutputs(s.opts.Name, s.opts.Console)
		return nil
	}
	dir := s.opts.Claimed
	if dir == nil {
		var err error
		if dir, err = ClaimRunDir(s.cfg.Claim()); err != nil {
			return err
		}
	}
	var err error
	s.out, err = OpenOutputs(dir, s.opts.Name, s.opts.Console, s.opts.TTY)
	return err
}

// openStepper builds the optimizer: AdamW behind the StepGuard in one
// process at ZeRO stage 0 (the default path), a zero.Engine otherwise
// (over a group of one when no Comm is given).
func (s *Session) openStepper() error {
	o := s.opts
	comm := o.Comm
	if comm == nil && s.resumesShards() {
		comm = collective.NewLocal(1)[0]
	}
	oc := OptimizerConfig{Adam: s.cfg.Optim.Adam, MaxNorm: s.cfg.Optim.MaxNorm, ZeroStage: s.cfg.ZeroStage, Recompute: o.Recompute}
	opt, err := NewOptimizer(context.Background(), comm, o.Model, o.Params, oc)
	if err != nil {
		return err
	}
	s.optimizer, s.opt, s.dp = opt, opt.adam, opt.dp
	if s.dp == nil {
		return nil
	}
	mem := s.dp.e.Memory()
	s.Log.Info("data parallel", "rank", s.dp.comm.Rank(), "ranks", s.dp.comm.Size(), "zero_stage", s.cfg.ZeroStage,
		"param_bytes", mem.Params, "grad_bytes", mem.Grads, "optim_bytes", mem.Optim, "scratch_bytes", mem.Scratch)
	return nil
}

// resumesShards reports whether this run resumes from a checkpoint a
// data-parallel run saved (ZeRO shards): one process then loads it
// through the sharding engine too, as a group of one.
func (s *Session) resumesShards() bool {
	if !s.cfg.Ckpt.LoadEnable {
		return false
	}
	dir, err := LatestCheckpoint(s.cfg.CheckpointDir())
	if err != nil || dir == "" {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, ZeroDir))
	return err == nil
}

// ranks is the number of data-parallel ranks (1 in one process).
func (s *Session) ranks() int {
	if s.opts.Comm == nil {
		return 1
	}
	return s.opts.Comm.Size()
}

// Rank is this process's data-parallel rank (0 in one process).
func (s *Session) Rank() int {
	if s.opts.Comm == nil {
		return 0
	}
	return s.opts.Comm.Rank()
}

// BeginMicro opens one micro-batch of the step: call it before the
// micro-batch's forward pass (ZeRO stage 3 gathers the parameters that
// belong to no block).
func (s *Session) BeginMicro(ctx context.Context) error {
	if err := s.optimizer.BeginMicro(ctx); err != nil {
		return fmt.Errorf("train: step %d: %w", s.step+1, err)
	}
	return nil
}

// EndMicro closes the micro-batch after its backward pass (data-parallel:
// its gradients are reduce-scattered over the ranks).
func (s *Session) EndMicro(ctx context.Context) error {
	if err := s.optimizer.EndMicro(ctx); err != nil {
		return fmt.Errorf("train: step %d: %w", s.step+1, err)
	}
	return nil
}

// Sum returns x summed over the data-parallel ranks (x in one process):
// e.g. the step's number of loss tokens, which normalises every rank's
// micro-batch losses.
func (s *Session) Sum(ctx context.Context, x float64) (float64, error) {
	v, err := s.optimizer.Sum(ctx, x)
	if err != nil {
		return 0, fmt.Errorf("train: step %d: rank %d: %w", s.step+1, s.Rank(), err)
	}
	return v, nil
}

// globalMetrics are the train metrics that are the same on every rank
// (Update's); LogTrain averages the others over the ranks, and sums
// tokens_per_sec.
var globalMetrics = []string{"loss", "lr", "grad_norm", "skipped"}

// reduceMetrics makes a step's metrics the whole group's.
func (s *Session) reduceMetrics(values map[string]float64) error {
	if s.ranks() == 1 {
		return nil
	}
	var keys []string
	for k := range values {
		if !slices.Contains(globalMetrics, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	buf := make([]float64, len(keys))
	for i, k := range keys {
		buf[i] = values[k]
	}
	if err := s.dp.comm.AllReduceF64(context.Background(), buf); err != nil {
		return fmt.Errorf("train: step %d: rank %d: metrics: %w", s.step, s.Rank(), err)
	}
	for i, k := range keys {
		if k == "tokens_per_sec" {
			values[k] = buf[i]
		} else {
			values[k] = buf[i] / float64(s.ranks())
		}
	}
	return nil
}

// Memory is this rank's bytes of training state: the engine's accounting
// when data-parallel (zero.Memory), else the one-process optimizer's
// (parameters 4Ψ, gradients 4Ψ, AdamW moments 8Ψ for Ψ parameters).
func (s *Session) Memory() zero.Memory {
	if s.dp != nil {
		return s.dp.e.Memory()
	}
	n := int64(s.opts.Params.Count())
	return zero.Memory{Params: 4 * n, Grads: 4 * n, Optim: 8 * n}
}

// ZeroStage and Ranks place the run: the stage its engine shards by (0
// in one process without it) and the number of data-parallel ranks.
func (s *Session) ZeroStage() int {
	if s.dp == nil {
		return 0
	}
	return s.dp.e.Stage()
}

// Ranks is the number of data-parallel ranks (1 in one process).
func (s *Session) Ranks() int { return s.ranks() }
