package placement

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/role/remote"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// PPO trains a PPO run with its roles where Place says. The zero value
// (with Place.Launcher inproc or empty) builds every role in this process,
// as `train ppo` always did.
type PPO struct {
	Place launch.Config
	// Identity is this process's place in a Slurm or Kubernetes launch
	// (rank 0: the driver); unused for inproc and local.
	Identity launch.Identity
	// Secret is the run secret of a Slurm or Kubernetes launch; the local
	// launcher makes a fresh one.
	Secret string
	// Digest identifies the run's configuration for a Slurm or Kubernetes
	// launch (every task computes it from the same flags); the local
	// launcher derives it from the run file it writes.
	Digest string
	// Exe and ExePrefix start a local worker: Exe ExePrefix... worker ...
	Exe       string
	ExePrefix []string
	// Engine is the GEMM kernel and thread count every process must use.
	Engine  Engine
	Version string
	// JoinTimeout bounds the wait for the workers; default 5 min.
	JoinTimeout time.Duration
	// NoOverlap asks placed roles one after another (for measuring).
	NoOverlap bool
	Logger    *slog.Logger
}

// Engine is the compute setting every process of a run must share for
// its results to be bit-identical.
type Engine struct {
	Gemm    string
	Threads int
	Spin    time.Duration // par.SetSpin: how long idle kernel workers spin (0: they park at once)
}

// RunFile is what a local worker needs to build its roles: the driver
// writes it into the run folder and starts each worker with --run PATH.
type RunFile struct {
	Actor                 string // the actor's model reference
	ApplyChatTemplate     bool
	TokenizerChatTemplate string
	Spec                  role.Spec
	Place                 launch.Config
	Needs                 launch.Needs
	Engine                Engine
}

// Needs says which optional roles a PPO config places.
func Needs(cfg ppo.Config) launch.Needs {
	return launch.Needs{Critic: cfg.NeedsCritic(), Reference: cfg.NeedsReference(), Reward: cfg.Reward.Model != ""}
}

// Train places cfg's roles, runs the PPO loop over them and returns the
// trainer (closed; its evaluations and metrics stay readable). te is the
// actor's bundle in this process, open loads critic and reward models, rt
// the driver's runtime (its MaxPositions, Overlap, SyncWeights and RunDir
// are set here: the run folder is claimed before a launcher writes into
// it).
func (p PPO) Train(ctx context.Context, cfg ppo.Config, te train.Setup, open inproc.Loader, rt ppo.Runtime) (*ppo.Trainer, error) {
	if p.Place.Launcher == "" {
		p.Place = launch.DefaultConfig() // the zero PPO: every role here
	}
	plan, err := launch.NewPlan(p.Place, Needs(cfg))
	if err != nil {
		return nil, err
	}
	if err := checkRanks(cfg, plan); err != nil {
		return nil, err
	}
	dir, err := train.ClaimRunDir(cfg.Claim()) // before the launcher writes workers/ into it
	if err != nil {
		return nil, err
	}
	defer dir.Release()
	rt.RunDir = dir
	o := Options{Plan: plan, Build: func(w inproc.Want) (*inproc.Roles, error) { return inproc.BuildSome(cfg.RoleSpec(), te, open, w) },
		Secret: p.Secret, Version: p.Version, Digest: p.Digest, JoinTimeout: p.JoinTimeout, Logger: p.Logger}
	switch plan.Launcher {
	case launch.Inproc, "":
	case launch.Local:
		if err := p.local(cfg, plan, &o); err != nil {
			return nil, err
		}
	default:
		if o.Secret == "" {
			return nil, fmt.Errorf("placement: --launcher %s: no run secret (set %s in every process's environment)", plan.Launcher, launch.VarRunSecret)
		}
		o.Listen = p.Identity.DriverAddr()
	}
	placed, runCtx, err := Start(ctx, o)
	if err != nil {
		return nil, err
	}
	defer placed.Close()
	rt.MaxPositions = te.Model.Dims().MaxPositions
	if placed.MaxPositions > 0 {
		rt.MaxPositions = placed.MaxPositions
	}
	rt.Overlap, rt.SyncWeights = placed.Overlap && !p.NoOverlap, placed.Sync
	t, err := ppo.New(runCtx, cfg, placed.Set, rt)
	if err != nil {
		return nil, placed.Explain(err)
	}
	defer t.Close()
	if err := t.Run(runCtx); err != nil {
		return t, placed.Explain(err)
	}
	return t, nil
}

// checkRanks refuses a plan whose data-parallel actor or critic cannot
// split the optimizer steps evenly, and a placement a release cannot run.
func checkRanks(cfg ppo.Config, plan launch.Plan) error {
	if plan.Launcher == launch.Inproc || plan.Launcher == "" {
		return nil
	}
	ranks := func(r launch.Role) int {
		if g, ok := plan.Host(r); ok {
			return len(g.Ranks)
		}
		return 1
	}
	return errors.Join(checkPlan(plan), cfg.CheckRanks(ranks(launch.Actor), ranks(launch.Critic)))
}

// local prepares the local launcher: the run file, a fresh secret, a
// loopback rendezvous and the workers' command lines.
func (p PPO) local(cfg ppo.Config, plan launch.Plan, o *Options) error {
	rf := RunFile{Actor: cfg.Actor.Model, ApplyChatTemplate: cfg.Data.ApplyChatTemplate, TokenizerChatTemplate: cfg.Data.TokenizerChatTemplate,
		Spec: cfg.RoleSpec(), Place: p.Place, Needs: Needs(cfg), Engine: p.Engine}
	dir := filepath.Join(cfg.Ckpt.OutputDir, "workers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("placement: worker folder: %w", err)
	}
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return fmt.Errorf("placement: run file: %w", err)
	}
	path := filepath.Join(dir, "run.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("placement: run file: %w", err)
	}
	secret, err := remote.NewSecret()
	if err != nil {
		return err
	}
	o.Secret, o.Listen, o.Digest = string(secret), "127.0.0.1:0", RunDigest(b)
	o.Local = &Local{Exe: p.Exe, Prefix: p.ExePrefix, Env: []string{launch.VarRunSecret + "=" + string(secret)}, LogDir: dir,
		Args: func(int) []string { return []string{"--run", path} }}
	return nil
}

// RunDigest is the config digest of a local run: the run file's hash.
func RunDigest(runFile []byte) string {
	sum := sha256.Sum256(runFile)
	return "run:" + hex.EncodeToString(sum[:8])
}
