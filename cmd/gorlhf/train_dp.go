package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gorlhf/gorlhf/internal/cluster"
	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/train"
)

// dpFlags are the data-parallel flags of the offline trainers (sft, rm,
// dpo): how many ranks train the model and what starts them. The ZeRO
// stage is --ds.zero_stage, part of train.Config.
type dpFlags struct {
	launcher       launch.Launcher
	nodes, workers int
	ident          launch.Flags
	joinTimeout    time.Duration
	reportMemory   bool
}

// offlineTrainer is what sft, rm and dpo's New return.
type offlineTrainer interface {
	Run(ctx context.Context) error
	Session() *train.Session
}

func (d *dpFlags) register(fs *flag.FlagSet) {
	d.launcher, d.nodes, d.workers = launch.Inproc, 1, 1
	fs.Var(&d.launcher, "launcher", "what starts the ranks: inproc (one process, the default), local (this command starts every rank on this host and supervises them) or slurm (srun starts every rank with the same command)")
	fs.IntVar(&d.nodes, "model.num_nodes", 1, "nodes the trained model's data-parallel ranks span")
	fs.IntVar(&d.workers, "model.num_workers_per_node", 1, "data-parallel ranks per node; ranks = num_nodes × num_workers_per_node")
	fs.DurationVar(&d.joinTimeout, "join_timeout", 2*time.Minute, "how long the ranks wait for each other to connect")
	fs.BoolVar(&d.reportMemory, "report_memory", false, "at the end, print this rank's memory as one JSON line on stdout: training state bytes and peak RSS since training started (gorlhf bench zero reads it)")
	d.ident.RegisterFlags(fs)
}

// size is the number of ranks asked for.
func (d *dpFlags) size() int { return d.nodes * d.workers }

// validate checks the flags alone.
func (d *dpFlags) validate() error {
	var errs []error
	if d.nodes < 1 {
		errs = append(errs, fmt.Errorf("--model.num_nodes must be at least 1, got %d", d.nodes))
	}
	if d.workers < 1 {
		errs = append(errs, fmt.Errorf("--model.num_workers_per_node must be at least 1, got %d", d.workers))
	}
	switch d.launcher {
	case launch.Inproc:
		if d.size() > 1 {
			errs = append(errs, fmt.Errorf("--model.num_nodes=%d --model.num_workers_per_node=%d needs several processes: use --launcher local or slurm", d.nodes, d.workers))
		}
	case launch.K8s:
		errs = append(errs, errors.New("--launcher k8s: the offline trainers run under local or slurm (gorlhf launch k8s renders train ppo)"))
	}
	return errors.Join(errs...)
}

// dpRun is this process's place in a data-parallel run: its rank's Comm
// and, on the local launcher's rank 0, the supervisor of the other ranks.
type dpRun struct {
	id      launch.Identity
	comm    collective.Comm
	sup     *cluster.Supervisor
	mu      sync.Mutex
	exit    error         // the first rank that failed (local launcher's rank 0)
	watched chan struct{} // closed once every supervised rank has exited
}

// Rank is this process's rank (0 without data parallelism).
func (r *dpRun) Rank() int {
	if r == nil {
		return 0
	}
	return r.id.Rank
}

// Comm is the group's communicator (nil without data parallelism).
func (r *dpRun) Comm() collective.Comm {
	if r == nil {
		return nil
	}
	return r.comm
}

// startDP makes this process a rank of the run the flags ask for: with
// one rank nothing (nil); under --launcher local the process that was
// started by the user becomes rank 0 and starts ranks 1…N−1 as copies of
// itself (trainer and args as given) with the rank in GORLHF_RANK; under
// slurm each task reads its rank from Slurm's variables. Then every rank
// joins the group's Comm at rank 0's address. cancel is called when a
// supervised rank dies. The local launcher's ranks get args, then pin
// (flags that make them agree with rank 0, e.g. the GEMM kernel its
// --gemm auto chose: ranks on different kernels would not be
// bit-identical).
func startDP(ctx context.Context, d *dpFlags, trainer string, args, pin []string, outputDir string, cancel context.CancelCauseFunc) (*dpRun, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	n := d.size()
	if n == 1 && d.launcher == launch.Inproc {
		return nil, nil
	}
	id, err := launch.ParseEnv(os.LookupEnv, d.ident)
	if err != nil {
		return nil, err
	}
	r := &dpRun{}
	var ln net.Listener
	secret := os.Getenv(launch.VarRunSecret)
	switch {
	case d.launcher == launch.Local && os.Getenv(launch.VarRank) == "":
		// the user's process: rank 0, the launcher of the others
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("rank 0: listen: %w", err)
		}
		if secret, err = newSecret(); err != nil {
			ln.Close()
			return nil, err
		}
		id = launch.Identity{Rank: 0, WorldSize: n, DriverHost: "127.0.0.1", DriverPort: ln.Addr().(*net.TCPAddr).Port, Env: launch.EnvNone}
		if r.sup, err = startRanks(ctx, trainer, append(append([]string(nil), args...), pin...), id, secret, filepath.Join(outputDir, "workers")); err != nil {
			ln.Close()
			return nil, err
		}
		r.watched = make(chan struct{})
		go r.watch(cancel, n-1)
	default:
		if id.WorldSize != n {
			return nil, fmt.Errorf("the launcher started %d processes but --model.num_nodes × --model.num_workers_per_node = %d (%s)", id.WorldSize, n, id.Env)
		}
		if secret == "" {
			return nil, fmt.Errorf("rank %d: set %s to the run's secret in every rank's environment (the local launcher and deploy/slurm scripts make one)", id.Rank, launch.VarRunSecret)
		}
	}
	r.id = id
	cfg := collective.Config{Rank: id.Rank, Size: n, Addr: id.DriverAddr(), Secret: secret, Listener: ln, Timeout: d.joinTimeout}
	if r.comm, err = collective.Connect(ctx, cfg); err != nil {
		r.Close()
		return nil, fmt.Errorf("rank %d of %d: joining the group at %s: %w", id.Rank, n, id.DriverAddr(), r.cause(err))
	}
	return r, nil
}

// startRanks starts ranks 1…N−1 of a local run as this binary.
func startRanks(ctx context.Context, trainer string, args []string, id launch.Identity, secret, logDir string) (*cluster.Supervisor, error) {
	exe, prefix, err := workerExe()
	if err != nil {
		return nil, err
	}
	var procs []cluster.Proc
	for rank := 1; rank < id.WorldSize; rank++ {
		procs = append(procs, cluster.Proc{Rank: rank, Roles: trainer + " rank " + strconv.Itoa(rank),
			Args: append(append(append([]string(nil), prefix...), "train", trainer), args...),
			Env: []string{launch.VarRank + "=" + strconv.Itoa(rank), launch.VarLocalRank + "=" + strconv.Itoa(rank),
				launch.VarWorldSize + "=" + strconv.Itoa(id.WorldSize), launch.VarDriverAddr + "=" + id.DriverAddr(),
				launch.VarRunSecret + "=" + secret}})
	}
	return cluster.Start(ctx, exe, procs, logDir)
}

// watch cancels the run when a supervised rank fails (a rank that
// finishes with status 0 is done, not lost).
func (r *dpRun) watch(cancel context.CancelCauseFunc, ranks int) {
	defer close(r.watched)
	for range ranks {
		e := <-r.sup.Exited()
		if e.Status == "exit status 0" {
			continue
		}
		r.mu.Lock()
		first := r.exit == nil
		if first {
			r.exit = e
		}
		r.mu.Unlock()
		if first {
			cancel(e)
		}
	}
}

// failed is the first rank that failed, or nil.
func (r *dpRun) failed() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exit
}

// cause prefers a failed rank's report to the error it caused here.
func (r *dpRun) cause(err error) error {
	if e := r.failed(); e != nil && err != nil {
		return fmt.Errorf("%w\n(on rank 0: %v)", e, err)
	}
	return err
}

// Close ends this rank's part: the Comm, then (rank 0 of a local run)
// waits a little for the other ranks to finish, stops any left by PID,
// and returns the first rank that failed.
func (r *dpRun) Close() error {
	if r == nil {
		return nil
	}
	if r.comm != nil {
		r.comm.Close()
	}
	if r.sup == nil {
		return nil
	}
	select {
	case <-r.watched:
		return r.failed()
	case <-time.After(30 * time.Second):
		r.sup.Stop(5 * time.Second)
		return errors.Join(r.failed(), errors.New("ranks still running 30 s after rank 0 finished were stopped"))
	}
}

func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("run secret: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// runOffline runs an offline trainer (sft, rm, dpo) on the ranks its
// --launcher and --model.num_* flags ask for: in this process alone, or
// as one rank of a data-parallel group (train.Setup.Comm). Under
// --launcher local the user's process claims the run folder first, so
// the other ranks' logs (in <output_dir>/workers) survive
// --ckpt.overwrite.
func runOffline(ctx context.Context, trainer string, args []string, f *trainFlags, tc train.Config, setup func(quiet bool) (train.Setup, error), build func(env train.Setup) (offlineTrainer, error)) error {
	if err := f.dp.validate(); err != nil {
		return err
	}
	if tc.LoRA.Enabled() && (f.dp.size() > 1 || f.dp.launcher != launch.Inproc) {
		return fmt.Errorf("--ds.lora.rank %d trains in this process alone (--launcher inproc, one rank): the adapters and their AdamW state are small, and data-parallel LoRA is not supported yet (docs/LORA.md)", tc.LoRA.Rank)
	}
	run := func(ctx context.Context, env train.Setup) error {
		t, err := build(env)
		if err != nil {
			return err
		}
		var m *memoryReport
		if f.dp.reportMemory {
			m = startMemoryReport(t.Session())
		}
		err = t.Run(ctx)
		m.print(os.Stdout, t.Session())
		return err
	}
	if f.dp.size() == 1 && f.dp.launcher == launch.Inproc {
		env, err := setup(f.quiet)
		if err != nil {
			return err
		}
		return run(ctx, env)
	}
	if err := tc.Validate(); err != nil {
		return err
	}
	if n := f.dp.size(); tc.Accumulation()%n != 0 {
		return fmt.Errorf("a step's %d micro-batches (--train.batch_size %d / --train.micro_batch_size %d) do not split evenly over %d data-parallel ranks (--model.num_nodes %d × --model.num_workers_per_node %d)",
			tc.Accumulation(), tc.BatchSize, tc.MicroBatchSize, n, f.dp.nodes, f.dp.workers)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var claimed *train.RunDir
	if f.dp.launcher == launch.Local && os.Getenv(launch.VarRank) == "" {
		var err error
		if claimed, err = train.ClaimRunDir(tc.Claim()); err != nil {
			return err
		}
		defer claimed.Release()
	}
	pin := []string{"--gemm", f.engine.kernel.Name()}
	dp, err := startDP(ctx, &f.dp, trainer, args, pin, tc.Ckpt.OutputDir, cancel)
	if err != nil {
		return err
	}
	// Ranks other than 0 log to stderr, which their launcher keeps.
	env, err := setup(f.quiet && dp.Rank() == 0)
	if err != nil {
		return errors.Join(err, dp.Close())
	}
	if dp.Rank() != 0 {
		env.Console, env.TTY = os.Stderr, false
	}
	env.Comm, env.Claimed = dp.Comm(), claimed
	err = run(ctx, env)
	if err != nil && dp.Rank() != 0 {
		err = fmt.Errorf("rank %d of %d: %w", dp.Rank(), f.dp.size(), err)
	}
	return errors.Join(dp.cause(err), dp.Close())
}
