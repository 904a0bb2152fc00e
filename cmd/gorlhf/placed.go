package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/par"
	"github.com/gorlhf/gorlhf/internal/placement"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// ppoCommand is a parsed `train ppo` command line: the training config,
// where its roles go, and who this process is.
type ppoCommand struct {
	cfg   ppo.Config
	place launch.Config
	ident launch.Flags
	f     *trainFlags
	args  []string // the command line after `train ppo`, as given
	// workerHost is the interface a worker's servers listen on.
	workerHost string
	// joinTimeout bounds the driver's wait for its workers, and a
	// worker's attempts to reach the driver.
	joinTimeout time.Duration
	noOverlap   bool
}

// parsePPO parses the flags of `train ppo` (and of `worker -- train ppo`)
// and sets up the compute engine they name.
func parsePPO(args []string) (*ppoCommand, error) {
	c, err := parsePPOFlags(args, "")
	if err != nil {
		return nil, err
	}
	c.f.engine.quiet = c.f.quiet
	return c, c.f.engine.apply()
}

// parsePPOFlags parses the flags of `train ppo` (a --config file
// included) without touching the engine; a non-empty launcher is the
// default of --launcher.
func parsePPOFlags(args []string, launcher launch.Launcher) (*ppoCommand, error) {
	c := &ppoCommand{cfg: ppo.DefaultConfig(), place: launch.DefaultConfig(), f: newTrainFlags("ppo"), args: args}
	if launcher != "" {
		c.place.Launcher = launcher
	}
	registerPPO(c.f.fs, &c.cfg)
	c.place.RegisterFlags(c.f.fs)
	c.ident.RegisterFlags(c.f.fs)
	c.f.fs.StringVar(&c.workerHost, "worker_host", "", "interface a worker's role server and weights plane listen on (default: 127.0.0.1 for --launcher local, else this host's name)")
	c.f.fs.DurationVar(&c.joinTimeout, "join_timeout", 5*time.Minute, "how long the driver waits for its workers to start and register (and a worker keeps trying to reach the driver)")
	c.f.fs.BoolVar(&c.noOverlap, "train.no_overlap", false, "with roles in worker processes, ask reward, reference and critic one after another instead of at once (for measuring)")
	if err := c.f.fs.Parse(args); err != nil {
		return nil, err
	}
	if c.f.fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags are --name value)", c.f.fs.Arg(0))
	}
	if c.f.config != "" {
		if err := applyConfigFile(c.f.fs, c.f.config, c.f.aliases); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// plan places the run's roles.
func (c *ppoCommand) plan() (launch.Plan, error) {
	needs := launch.Needs{Critic: c.cfg.NeedsCritic(), Reference: c.cfg.NeedsReference(), Reward: c.cfg.Reward.Model != ""}
	return launch.NewPlan(c.place, needs)
}

// digest identifies everything that must agree between the driver and
// its workers: the training and placement configuration, the GEMM kernel
// and the thread count (results are bit-identical only at equal kernel
// and threads). Its readable tail names the kernel and threads, so a
// mismatch there is plain in the refusal.
func (c *ppoCommand) digest() (string, error) {
	b, err := json.Marshal(struct {
		Config ppo.Config
		Place  launch.Config
	}{c.cfg, c.place})
	if err != nil {
		return "", fmt.Errorf("config digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%s/%s/threads=%d", hex.EncodeToString(sum[:8]), c.f.engine.kernel.Name(), par.Threads()), nil
}

// runPlaced runs `train ppo` with a launcher other than inproc: as the
// driver (rank 0) or, under Slurm and Kubernetes where every process runs
// the same command, as the worker its rank says.
func runPlaced(ctx context.Context, c *ppoCommand) error {
	if err := c.cfg.Validate(); err != nil {
		return err
	}
	if c.cfg.Rollout.Backend == ppo.BackendOpenAI {
		return fmt.Errorf("--rollout.backend openai runs with --launcher inproc (the external engines are the separate rollout processes), not --launcher %s", c.place.Launcher)
	}
	plan, err := c.plan()
	if err != nil {
		return err
	}
	id := launch.Identity{Rank: 0, WorldSize: plan.WorldSize, DriverHost: "127.0.0.1"}
	if plan.Launcher != launch.Local {
		if id, err = launch.ParseEnv(os.LookupEnv, c.ident); err != nil {
			return err
		}
		if id.WorldSize != plan.WorldSize {
			return fmt.Errorf("the launcher started %d processes but the placement needs %d (%s)", id.WorldSize, plan.WorldSize, plan.Launcher)
		}
	}
	if id.Rank != 0 {
		return runWorkerRank(ctx, c, plan, id)
	}
	return runDriver(ctx, c, plan, id)
}

// runDriver is rank 0: it loads the actor bundle (tokenizer, template),
// places the roles and runs the PPO loop over them.
func runDriver(ctx context.Context, c *ppoCommand, plan launch.Plan, id launch.Identity) error {
	te, err := ppoSetup(c.cfg, c.f.quiet)
	if err != nil {
		return err
	}
	p, err := c.placer(te)
	if err != nil {
		return err
	}
	p.Identity = id
	if plan.Launcher != launch.Local {
		if p.Digest, err = c.digest(); err != nil {
			return err
		}
		if p.Secret = os.Getenv(launch.VarRunSecret); p.Secret == "" {
			return fmt.Errorf("--launcher %s: set %s to the run's secret in every process's environment (deploy/slurm/ppo.sbatch makes one)", plan.Launcher, launch.VarRunSecret)
		}
	}
	rt := ppoRuntime(c.cfg, te)
	if rt.Agent, err = remoteAgent(c.cfg); err != nil {
		return err
	}
	_, err = p.Train(ctx, c.cfg, te, loadModel, rt)
	return err
}

// placer is the placement of this command's run.
func (c *ppoCommand) placer(te train.Setup) (placement.PPO, error) {
	exe, prefix, err := workerExe()
	if err != nil {
		return placement.PPO{}, err
	}
	return placement.PPO{Place: c.place, Exe: exe, ExePrefix: prefix, Version: version,
		Engine:      placement.Engine{Gemm: c.f.engine.kernel.Name(), Threads: par.Threads(), Spin: par.Spin()},
		JoinTimeout: c.joinTimeout, NoOverlap: c.noOverlap,
		Logger: slog.New(slog.NewTextHandler(consoleOrDiscard(te.Console), nil))}, nil
}

// workerExe is the program the local launcher starts workers with: this
// binary (tests replace it with their own test binary).
var workerExe = func() (string, []string, error) {
	exe, err := os.Executable()
	return exe, nil, err
}

// runWorkerRank serves the roles of this rank's placement group.
func runWorkerRank(ctx context.Context, c *ppoCommand, plan launch.Plan, id launch.Identity) error {
	digest, err := c.digest()
	if err != nil {
		return err
	}
	secret := os.Getenv(launch.VarRunSecret)
	if secret == "" {
		return fmt.Errorf("worker rank %d: %s is not set (the launcher hands each worker the run's secret)", id.Rank, launch.VarRunSecret)
	}
	host := c.workerHost
	if host == "" && plan.Launcher != launch.Local {
		if host, err = os.Hostname(); err != nil {
			return err
		}
	}
	te, err := ppoSetup(c.cfg, true)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err = placement.Serve(ctx, placement.WorkerOptions{Identity: id, Plan: plan, Build: ppoBuilder(c.cfg, te), Secret: secret,
		Version: version, Digest: digest, Host: host, JoinTimeout: min(c.joinTimeout, time.Minute), Logger: log})
	if err != nil {
		return fmt.Errorf("worker rank %d: %w", id.Rank, err)
	}
	return nil
}

// runWorker is `gorlhf worker [--rank R --world_size N --driver_addr H:P]
// (--run RUN.json | -- train ppo FLAGS)`: one worker process of a placed
// run. The local launcher starts it with the run file it wrote; a
// Kubernetes pod runs it with the training command; under Slurm `train
// ppo` itself turns into it on every rank but 0.
func runWorker(ctx context.Context, args []string) error {
	fs := newFlagSet("worker", "worker [--rank R --world_size N --driver_addr HOST:PORT] (--run RUN.json | -- train ppo FLAGS)")
	var ident launch.Flags
	ident.RegisterFlags(fs)
	runPath := fs.String("run", "", "the run file the local launcher wrote (workers/run.json in the run folder)")
	workerHost := fs.String("worker_host", "127.0.0.1", "with --run: interface the role server and weights plane listen on")
	joinTimeout := fs.Duration("join_timeout", time.Minute, "with --run: how long to keep trying to reach the driver")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *runPath != "" {
		return runWorkerFile(ctx, *runPath, ident, *workerHost, *joinTimeout)
	}
	rest := fs.Args()
	if len(rest) < 2 || rest[0] != "train" || rest[1] != "ppo" {
		return errors.New("worker: give --run RUN.json, or the run's command after --, as in: worker --rank 1 -- train ppo --launcher k8s ...")
	}
	c, err := parsePPO(rest[2:])
	if err != nil {
		return err
	}
	mergeIdentity(&c.ident, ident)
	if err := c.cfg.Validate(); err != nil {
		return err
	}
	plan, err := c.plan()
	if err != nil {
		return err
	}
	id, err := launch.ParseEnv(os.LookupEnv, c.ident)
	if err != nil {
		return err
	}
	if id.Rank == 0 {
		return errors.New("worker: rank 0 is the driver; run `gorlhf train ppo` for it")
	}
	return runWorkerRank(ctx, c, plan, id)
}

// runWorkerFile serves a local launch's worker rank from its run file.
func runWorkerFile(ctx context.Context, path string, ident launch.Flags, host string, joinTimeout time.Duration) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	var rf placement.RunFile
	if err := json.Unmarshal(b, &rf); err != nil {
		return fmt.Errorf("worker: run file %s: %w", path, err)
	}
	ef := engineFlags{threads: rf.Engine.Threads, gemm: rf.Engine.Gemm, spin: rf.Engine.Spin, quiet: true}
	if err := ef.apply(); err != nil {
		return fmt.Errorf("worker: run file %s: %w", path, err)
	}
	id, err := launch.ParseEnv(os.LookupEnv, ident)
	if err != nil {
		return err
	}
	plan, err := launch.NewPlan(rf.Place, rf.Needs)
	if err != nil {
		return fmt.Errorf("worker: run file %s: %w", path, err)
	}
	secret := os.Getenv(launch.VarRunSecret)
	if secret == "" {
		return fmt.Errorf("worker rank %d: %s is not set (the launcher hands each worker the run's secret)", id.Rank, launch.VarRunSecret)
	}
	te, err := trainSetup(rf.Actor, data.Config{ApplyChatTemplate: rf.ApplyChatTemplate, TokenizerChatTemplate: rf.TokenizerChatTemplate}, true)
	if err != nil {
		return err
	}
	build := func(w inproc.Want) (*inproc.Roles, error) { return inproc.BuildSome(rf.Spec, te, loadModel, w) }
	err = placement.Serve(ctx, placement.WorkerOptions{Identity: id, Plan: plan, Build: build, Secret: secret,
		Version: version, Digest: placement.RunDigest(b), Host: host, JoinTimeout: joinTimeout,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return fmt.Errorf("worker rank %d: %w", id.Rank, err)
	}
	return nil
}

// mergeIdentity lets the worker command's own identity flags win over
// those inside the training command.
func mergeIdentity(dst *launch.Flags, src launch.Flags) {
	for _, f := range []struct {
		d *string
		s string
	}{{&dst.Rank, src.Rank}, {&dst.WorldSize, src.WorldSize},
		{&dst.LocalRank, src.LocalRank}, {&dst.NodeRank, src.NodeRank}, {&dst.DriverAddr, src.DriverAddr}, {&dst.RunID, src.RunID}} {
		if f.s != "" {
			*f.d = f.s
		}
	}
}

// consoleOrDiscard is the console, or nowhere for a quiet run.
func consoleOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
