package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/par"
	"github.com/gorlhf/gorlhf/internal/placement"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo/demo"
)

// runDemo is `gorlhf demo`: the default recipe on the embedded
// stories260K (a sentiment reward model, then PPO to make stories more
// positive), with no argument needed.
func runDemo(ctx context.Context, args []string) error {
	var o demo.Options
	var eng engineFlags
	algos := "gae"
	fs := newFlagSet("demo", "demo [--task sentiment|arithmetic] [--algo gae,group_norm,reinforce_baseline] [--output_dir DIR] [--seed N] [--iterations N] [--turns N]")
	eng.register(fs)
	fs.StringVar(&o.Task, "task", demo.TaskSentiment, "recipe: sentiment (reward model on labelled sentences, then RL on story openings) or arithmetic (RL with verifiable rewards: brief SFT on \"23+4=\" problems, then GRPO with an exact-match verifier; held-out accuracy before and after)")
	fs.StringVar(&algos, "algo", algos, "comma-separated advantage estimators to run against the same reward model: gae (PPO), group_norm (GRPO), reinforce_baseline, rloo, reinforce, dr_grpo")
	fs.StringVar(&o.OutputDir, "output_dir", "gorlhf-demo", "folder for the data, the reward model, each run and its report (the arithmetic task: gorlhf-demo-arithmetic unless set)")
	fs.Uint64Var(&o.Seed, "seed", 42, "seed of every run (the arithmetic task: 1 unless set)")
	fs.IntVar(&o.Iterations, "iterations", 40, "RL iterations per algorithm (the arithmetic task: 200 unless set)")
	turns := fs.Int("turns", 1, "arithmetic task: answers per GRPO episode; > 1 plays multi-turn episodes of the chain environment (23+4= 27, then 27+5= ...)")
	fs.BoolVar(&eng.quiet, "quiet", false, "print only the summary")
	launcher := launch.Inproc
	fs.Var(&launcher, "launcher", "where the RL runs' roles go: inproc (this process) or local (actor, reference, critic, reward model and rollout engine each in a worker process of its own)")
	registerDemoAsync(fs, &o.Async)
	fs.StringVar(&o.RewardModel, "reward_model", "", "sentiment task: use this reward model folder (an earlier demo's <output_dir>/reward_model) instead of training one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo: unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, a := range strings.Split(algos, ",") {
		var e rl.Estimator
		if err := e.Set(strings.TrimSpace(a)); err != nil {
			return fmt.Errorf("demo: --algo: %w", err)
		}
		o.Algos = append(o.Algos, e)
	}
	err := eng.apply()
	if err != nil {
		return err
	}
	if !eng.quiet {
		o.Console = os.Stderr
		if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			o.TTY = true
		}
	}
	if o.Placement, err = demoPlacement(launcher, eng); err != nil {
		return err
	}
	if o.Task == taskArithmetic {
		return runArithmeticDemo(ctx, arithmeticFlags{outputDir: o.OutputDir, seed: o.Seed, iterations: o.Iterations,
			turns: *turns, set: set, console: o.Console, tty: o.TTY, placement: o.Placement, async: o.Async})
	}
	if set["turns"] {
		return fmt.Errorf("demo: --turns applies to the arithmetic task")
	}
	start := time.Now()
	sum, err := demo.Run(ctx, o)
	if err != nil {
		return err
	}
	printDemo(os.Stdout, sum, time.Since(start))
	return nil
}

// printDemo writes the before/after numbers, sample stories and timings.
func printDemo(w io.Writer, s demo.Summary, wall time.Duration) {
	fmt.Fprintf(w, "\nreward model: held-out pair accuracy %.3f (untrained head: %.3f), %s → %s\n",
		s.RM.EvalAcc, s.RM.StartAcc, s.RM.Wall.Round(time.Second), s.RM.Dir)
	for _, r := range s.Runs {
		fmt.Fprintf(w, "\n== %s: %d iterations in %s → %s\n", r.Algo, r.Iterations, r.Wall.Round(time.Second), r.Dir)
		fmt.Fprintf(w, "held-out reward (normalised RM score): %+.3f → %+.3f   KL to reference (per token): %.4f → %.4f   length: %.1f → %.1f tokens\n",
			r.Before.Reward, r.After.Reward, r.Before.KL, r.After.KL, r.Before.Length, r.After.Length)
		fmt.Fprintf(w, "seconds per iteration: %s\n", phaseLine(r.PhaseSeconds))
		for i := 0; i < min(2, len(r.Before.Samples), len(r.After.Samples)); i++ {
			b, a := r.Before.Samples[i], r.After.Samples[i]
			fmt.Fprintf(w, "\nprompt: %s\n  before (%+.2f): %s\n  after  (%+.2f): %s\n", b.Prompt, b.Reward, oneLine(b.Response), a.Reward, oneLine(a.Response))
		}
		fmt.Fprintf(w, "\nreport: %s/report.html\n", r.Dir)
	}
	if len(s.ComparePlots) > 0 {
		fmt.Fprintf(w, "\nside by side: %s\n", strings.Join(s.ComparePlots, ", "))
	}
	fmt.Fprintf(w, "total wall time: %s\n", wall.Round(time.Second))
}

// phaseLine formats the phase times, biggest first.
func phaseLine(p map[string]float64) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		switch {
		case p[a] > p[b]:
			return -1
		case p[a] < p[b]:
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.2f", k, p[k])
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// demoPlacement places the demo's RL roles: in this process, or each in a
// worker process of its own (the local launcher, with this binary).
func demoPlacement(l launch.Launcher, eng engineFlags) (placement.PPO, error) {
	if l != launch.Inproc && l != launch.Local {
		return placement.PPO{}, fmt.Errorf("demo: --launcher %s: the demo runs inproc or local (use train ppo for slurm and k8s)", l)
	}
	exe, prefix, err := workerExe()
	if err != nil {
		return placement.PPO{}, err
	}
	pc := launch.DefaultConfig()
	pc.Launcher = l
	return placement.PPO{Place: pc, Exe: exe, ExePrefix: prefix, Version: version,
		Engine: placement.Engine{Gemm: eng.kernel.Name(), Threads: par.Threads()}}, nil
}
