package ppo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Checkpoint layout under Ckpt.Path, after OpenRLHF's _actor and _critic
// folders: each role writes its own train checkpoints (model, optimizer
// moments, trainer_state.json with the driver's runState in "extra").
const (
	actorCkpt  = "_actor"
	criticCkpt = "_critic"
)

// runState is everything of the driver the next iteration depends on.
type runState struct {
	Iteration       int             `json:"iteration"`
	Cursor          data.Cursor     `json:"cursor"` // the prompt stream
	RNG             []byte          `json:"rng"`    // seeds and shuffles
	KL              rl.KLController `json:"kl"`
	Version         int64           `json:"weight_version"`
	ActorSteps      int             `json:"actor_steps"`
	CriticSteps     int             `json:"critic_steps"`
	ActorNonFinite  int             `json:"actor_nonfinite_run"`
	CriticNonFinite int             `json:"critic_nonfinite_run"`
	Config          json.RawMessage `json:"config"`
	// Async is the generation queue of an async run (absent otherwise).
	Async *asyncState `json:"async,omitempty"`
}

// criticDir is where the final critic goes.
func criticDir(outputDir string) string { return filepath.Join(outputDir, "critic") }

// checkpoint saves the critic, then the actor (whose folder marks the
// checkpoint complete: resume starts from the actor's latest).
func (t *Trainer) checkpoint(ctx context.Context) error {
	rng, err := t.rng.MarshalBinary()
	if err != nil {
		return fmt.Errorf("ppo: checkpoint: %w", err)
	}
	cfg, err := json.Marshal(t.cfg)
	if err != nil {
		return fmt.Errorf("ppo: checkpoint: %w", err)
	}
	st := runState{Iteration: t.iter, Cursor: t.sampler.Cursor(), RNG: rng, KL: t.kl, Version: t.version,
		ActorSteps: t.actor.steps, CriticSteps: t.critic.steps, ActorNonFinite: t.actor.skips.Run,
		CriticNonFinite: t.critic.skips.Run, Config: cfg}
	if st.Async, err = t.saveAsync(); err != nil {
		return fmt.Errorf("ppo: checkpoint: %w", err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("ppo: checkpoint: %w", err)
	}
	root, keep := t.cfg.CheckpointDir(), t.cfg.Ckpt.MaxNum
	if t.roles.Critic != nil {
		if _, err := t.roles.Critic.Save(ctx, role.SaveRequest{Root: filepath.Join(root, criticCkpt), Step: t.iter, Keep: keep, State: b}); err != nil {
			return fmt.Errorf("ppo: checkpoint critic: %w", err)
		}
	}
	res, err := t.roles.Actor.Save(ctx, role.SaveRequest{Root: filepath.Join(root, actorCkpt), Step: t.iter, Keep: keep, State: b})
	if err != nil {
		return fmt.Errorf("ppo: checkpoint actor: %w", err)
	}
	t.log.Info("checkpoint saved", "dir", res.Dir, "iteration", t.iter)
	return nil
}

// resume restores the latest checkpoint that loads, if there is one:
// both models and optimizers, the prompt cursor, the RNG, the KL
// controller and the step counts; then it republishes the actor's weights
// to the rollout engine. A checkpoint that does not load (truncated,
// damaged) is skipped with a warning for the one before.
func (t *Trainer) resume(ctx context.Context) error {
	root := t.cfg.CheckpointDir()
	dirs, err := train.Checkpoints(filepath.Join(root, actorCkpt))
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		t.log.Info("no checkpoint to resume from; starting fresh", "path", root)
		return nil
	}
	var first error
	for _, dir := range dirs {
		err := t.loadCheckpoint(ctx, dir)
		if err == nil {
			break
		}
		if first == nil {
			first = err
		}
		if dir == dirs[len(dirs)-1] {
			return fmt.Errorf("ppo: no checkpoint in %s loads: %w", root, first)
		}
		t.log.Warn("checkpoint does not load; trying the one before", "dir", dir, "err", err)
	}
	if t.version > 0 { // the engine still holds the initial policy
		t.version--
		if err := t.publish(ctx, newPhaseTimer()); err != nil {
			return err
		}
	}
	t.log.Info("resumed from checkpoint", "dir", t.resumed, "iteration", t.iter, "weight_version", t.version)
	return nil
}

// loadCheckpoint loads the actor's checkpoint dir, the critic's of the
// same step and the driver's state saved with them.
func (t *Trainer) loadCheckpoint(ctx context.Context, dir string) error {
	res, err := t.roles.Actor.Load(ctx, role.LoadRequest{Dir: dir})
	if err != nil {
		return fmt.Errorf("ppo: resume actor: %w", err)
	}
	var st runState
	if err := json.Unmarshal(res.State, &st); err != nil {
		return fmt.Errorf("ppo: resume: %s: driver state: %w", dir, err)
	}
	if t.roles.Critic != nil {
		cdir := filepath.Join(t.cfg.CheckpointDir(), criticCkpt, train.Tag(res.Step))
		if _, err := t.roles.Critic.Load(ctx, role.LoadRequest{Dir: cdir}); err != nil {
			return fmt.Errorf("ppo: resume critic: %w", err)
		}
	}
	if err := t.restore(st); err != nil {
		return fmt.Errorf("ppo: resume %s: %w", dir, err)
	}
	t.resumed = dir
	return nil
}

// restore sets the driver's state from a checkpoint.
func (t *Trainer) restore(st runState) error {
	if err := t.sampler.Seek(st.Cursor); err != nil {
		return err
	}
	if err := t.rng.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("rng: %w", err)
	}
	t.iter, t.kl, t.version = st.Iteration, st.KL, st.Version
	t.actor.steps, t.critic.steps = st.ActorSteps, st.CriticSteps
	t.actor.skips.Run, t.critic.skips.Run = st.ActorNonFinite, st.CriticNonFinite
	if err := t.restoreAsync(st.Async); err != nil {
		return fmt.Errorf("async: %w", err)
	}
	if cfg, err := json.Marshal(t.cfg); err == nil && !bytes.Equal(cfg, st.Config) {
		t.log.Warn("resuming with a different configuration than the checkpoint's")
	}
	return nil
}
