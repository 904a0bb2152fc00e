package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/placement"
	"github.com/gorlhf/gorlhf/internal/recipe"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// taskArithmetic is the RLVR recipe of `gorlhf demo --task arithmetic`.
const taskArithmetic = "arithmetic"

// arithmeticFlags are the demo flags the arithmetic task reads; set says
// which ones the command line set (the others keep the recipe's defaults).
type arithmeticFlags struct {
	outputDir  string
	seed       uint64
	iterations int
	turns      int
	set        map[string]bool
	console    io.Writer
	tty        bool
	placement  placement.PPO
	async      ppo.AsyncConfig
}

// runArithmeticDemo is `gorlhf demo --task arithmetic`: SFT stories260K
// briefly on "a+b=" problems, then GRPO with the exact-match verifier, and
// held-out accuracy before and after.
func runArithmeticDemo(ctx context.Context, f arithmeticFlags) error {
	if f.set["algo"] {
		return fmt.Errorf("demo: --algo applies to the sentiment task; the arithmetic task runs GRPO")
	}
	if f.set["reward_model"] {
		return fmt.Errorf("demo: --reward_model applies to the sentiment task; the arithmetic task grades answers exactly")
	}
	d := recipe.DefaultArithmeticDemo()
	if f.set["seed"] {
		d.Seed = f.seed
	}
	if f.set["output_dir"] {
		d.OutputDir = f.outputDir
	}
	if f.set["iterations"] {
		d.Iterations = f.iterations
	}
	if f.set["turns"] {
		d.Turns = f.turns
	}
	d.Console, d.TTY, d.Placement, d.Async = f.console, f.tty, f.placement, f.async
	start := time.Now()
	sum, err := recipe.RunArithmeticDemo(ctx, d)
	if err != nil {
		return err
	}
	printArithmeticDemo(os.Stdout, d, sum, time.Since(start))
	return nil
}

// printArithmeticDemo writes the accuracy table, the curve, a few answers
// before and after, and where the files are.
func printArithmeticDemo(w io.Writer, d recipe.ArithmeticDemo, s recipe.DemoSummary, wall time.Duration) {
	fmt.Fprintf(w, "\narithmetic RLVR (seed %d): %d training problems, %d held-out problems never seen in SFT or RL\n", d.Seed, s.Train, s.HeldOut)
	fmt.Fprintf(w, "held-out accuracy               greedy   sampled (T=1, 8 per problem)\n")
	row := func(name string, e recipe.DemoEval) {
		fmt.Fprintf(w, "  %-28s %6.1f %%  %6.1f %%\n", name, 100*e.Greedy, 100*e.Sampled)
	}
	row("stories260K", s.Base)
	row(fmt.Sprintf("after SFT (%d steps)", s.SFTSteps), s.SFT)
	row(fmt.Sprintf("after GRPO (%d iterations)", d.Iterations), s.RL)
	fmt.Fprintf(w, "GRPO gain over SFT: %+.1f points greedy, %+.1f points sampled\n", 100*(s.RL.Greedy-s.SFT.Greedy), 100*(s.RL.Sampled-s.SFT.Sampled))
	parts := make([]string, len(s.Curve))
	for i, p := range s.Curve {
		parts[i] = fmt.Sprintf("%d: %.1f", p.Iteration, 100*p.Accuracy)
	}
	if d.Turns > 1 {
		if n := len(s.Curve); n > 0 {
			fmt.Fprintf(w, "held-out %d-turn episodes, greedy (%% of answers right): SFT %.1f %%, after GRPO %.1f %% (%+.1f points)\n",
				d.Turns, 100*s.Curve[0].Accuracy, 100*s.Curve[n-1].Accuracy, 100*(s.Curve[n-1].Accuracy-s.Curve[0].Accuracy))
		}
		fmt.Fprintf(w, "held-out episode return during GRPO (iteration: %%): %s\n", strings.Join(parts, ", "))
		turns := func(acc []float64) string {
			out := make([]string, len(acc))
			for k, a := range acc {
				out[k] = fmt.Sprintf("turn %d %.1f %%", k+1, 100*a)
			}
			return strings.Join(out, ", ")
		}
		fmt.Fprintf(w, "held-out accuracy per turn, greedy: SFT %s; after GRPO %s\n", turns(s.TurnsSFT), turns(s.TurnsRL))
	} else {
		fmt.Fprintf(w, "held-out greedy accuracy during GRPO (iteration: %%): %s\n", strings.Join(parts, ", "))
	}
	shown := 0
	for i := 0; i < len(s.SFT.Answers) && i < len(s.RL.Answers) && shown < 6; i++ {
		b, a := s.SFT.Answers[i], s.RL.Answers[i]
		if b.Correct == a.Correct && shown >= 3 {
			continue
		}
		fmt.Fprintf(w, "  %-7s SFT %-6q %s   GRPO %-6q %s\n", b.Problem.Prompt(), strings.TrimSpace(b.Response), mark(b.Correct),
			strings.TrimSpace(a.Response), mark(a.Correct))
		shown++
	}
	fmt.Fprintf(w, "curve: %s\nsummary: %s\nGRPO run report: %s/report.html\n", s.CurvePlot, s.Summary, s.RLDir)
	fmt.Fprintf(w, "wall time: SFT %s, GRPO %s, total %s\n", s.SFTWall.Round(time.Second), s.RLWall.Round(time.Second), wall.Round(time.Second))
}

func mark(ok bool) string {
	if ok {
		return "right"
	}
	return "wrong"
}
