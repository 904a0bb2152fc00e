package recipe

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

var (
	offPolicyLag   = flag.Int("offpolicy.lag", 4, "BenchmarkOffPolicyArithmetic: the rollout engine's weights lag the actor's by this many versions")
	offPolicyIters = flag.Int("offpolicy.iterations", 100, "BenchmarkOffPolicyArithmetic: GRPO iterations per run")
	offPolicySeed  = flag.Uint64("offpolicy.seed", 1, "BenchmarkOffPolicyArithmetic: the demo's seed")
	offPolicyOut   = flag.String("offpolicy.out", "", "BenchmarkOffPolicyArithmetic: keep the runs in this folder (default: a temporary one)")
)

// laggedSync is a Runtime.SyncWeights whose rollout engine receives the
// actor's weights lag versions late (the initial policy until then): a
// deliberately stale, off-policy rollout, as asynchronous training with a
// queue of lag batches would give.
type laggedSync struct {
	lag   int
	queue []role.Weights
}

func (s *laggedSync) sync(ctx context.Context, actor role.Actor, rollout role.Rollout, version int64) error {
	w, err := actor.Weights(ctx)
	if err != nil {
		return err
	}
	w.Version = version
	s.queue = append(s.queue, w)
	if len(s.queue) <= s.lag {
		return nil
	}
	next := s.queue[0]
	s.queue = s.queue[1:]
	return rollout.LoadWeights(ctx, next)
}

// offPolicyRun is one GRPO run's outcome.
type offPolicyRun struct {
	name                  string
	heldOut               DemoEval
	k1, k3                float64 // means over iterations of mismatch/kl, mismatch/k3_kl
	trainScore            float64 // mean training score of the last 20 iterations
	corrected, rejectedSq float64 // means of is_correction/clipped_frac or masked_frac, and the sequence share
	wall                  time.Duration
}

// BenchmarkOffPolicyArithmetic runs the arithmetic demo's GRPO from one
// SFT model with the actor recomputing π_old (--train.engine_logprobs
// off) in four settings: rollout in sync with the actor; rollout weights
// -offpolicy.lag versions stale, without correction; the same with
// OpenRLHF's tis and icepop corrections (--algo.advantage.is_correction_*,
// default thresholds 0.5, 5). It logs the held-out accuracy of each final
// model, the mean log-prob mismatch (k1 and k3 KL between the engine's and
// the actor's log-probs) and what the correction did:
//
//	go test -run '^$' -bench OffPolicyArithmetic -benchtime 1x -timeout 2h ./internal/recipe/ -offpolicy.lag 4
func BenchmarkOffPolicyArithmetic(b *testing.B) {
	ctx := context.Background()
	d := DefaultArithmeticDemo()
	d.Seed, d.Iterations = *offPolicySeed, *offPolicyIters
	d.OutputDir = *offPolicyOut
	if d.OutputDir == "" {
		d.OutputDir = b.TempDir()
	}
	trainPs, heldOut, err := d.Task.Split()
	if err != nil {
		b.Fatal(err)
	}
	files, err := d.writeData(trainPs, heldOut)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		b.Fatal(err)
	}
	sftDir, sftSteps, _, err := d.runSFT(ctx, files, tok, trainPs[:min(len(trainPs), sftProbeSize)])
	if err != nil {
		b.Fatal(err)
	}
	sft, err := d.evalModel(ctx, sftDir, tok, heldOut)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seed %d: SFT %d steps, held-out greedy %.1f %%, sampled %.1f %%", d.Seed, sftSteps, 100*sft.Greedy, 100*sft.Sampled)
	modes := []struct {
		name string
		lag  int
		ic   rl.ISCorrectionType
	}{{"sync", 0, ""}, {fmt.Sprintf("lag%d", *offPolicyLag), *offPolicyLag, ""},
		{fmt.Sprintf("lag%d+tis", *offPolicyLag), *offPolicyLag, rl.ISTIS}, {fmt.Sprintf("lag%d+icepop", *offPolicyLag), *offPolicyLag, rl.ISIcepop}}
	for range b.N {
		var runs []offPolicyRun
		for _, mode := range modes {
			c := d.GRPOConfig(sftDir, files.prompts, files.heldOut)
			c.Train.EngineLogProbs = false
			c.Ckpt.OutputDir = filepath.Join(d.OutputDir, "grpo-"+mode.name)
			if mode.ic != "" {
				c.Algo.ISCorrection.Enable, c.Algo.ISCorrection.Type = true, mode.ic
			}
			run, err := d.offPolicyRun(ctx, c, mode.lag, tok, heldOut)
			if err != nil {
				b.Fatal(err)
			}
			run.name = mode.name
			runs = append(runs, run)
			b.Logf("%-12s held-out greedy %5.1f %% sampled %5.1f %% | train score (last 20) %.3f | mismatch k1 %.4f k3 %.4f | corrected tokens %.3f, seqs %.3f | %s",
				run.name, 100*run.heldOut.Greedy, 100*run.heldOut.Sampled, run.trainScore, run.k1, run.k3, run.corrected, run.rejectedSq, run.wall.Round(time.Second))
		}
		for _, r := range runs {
			b.ReportMetric(100*r.heldOut.Greedy, "greedy%-"+r.name)
			b.ReportMetric(r.k3, "k3-"+r.name)
		}
	}
}

// offPolicyRun trains c in this process with the rollout lag versions
// behind and evaluates the final actor on the held-out problems.
func (d ArithmeticDemo) offPolicyRun(ctx context.Context, c ppo.Config, lag int, tok tokenizer.Tokenizer, heldOut []Problem) (offPolicyRun, error) {
	var out offPolicyRun
	env, err := d.env(c.Actor.Model)
	if err != nil {
		return out, err
	}
	open := func(ref string) (*load.Loaded, error) { return load.Load(ref, load.Options{}) }
	roles, err := inproc.Build(c.RoleSpec(), env, open)
	if err != nil {
		return out, err
	}
	defer roles.Close()
	s := &laggedSync{lag: lag}
	rt := ppo.Runtime{Tok: env.Tok, StopIDs: env.StopIDs, NoBOS: !env.AddBOS, SyncWeights: s.sync}
	t, err := ppo.New(ctx, c, roles.Set, rt)
	if err != nil {
		return out, err
	}
	start := time.Now()
	if err := t.Run(ctx); err != nil {
		return out, err
	}
	out.wall = time.Since(start)
	var n, tail float64
	var scores []float64
	for _, r := range t.Metrics() {
		if r.Split != "train" {
			continue
		}
		v := r.Values
		out.k1 += v["mismatch/kl"]
		out.k3 += v["mismatch/k3_kl"]
		out.corrected += v["is_correction/clipped_frac"] + v["is_correction/masked_frac"]
		out.rejectedSq += v["is_correction/clipped_seq_frac"] + v["is_correction/masked_seq_frac"]
		n++
		sc, ok := v["dynamic_filtering_score"]
		if !ok {
			sc = v["score"]
		}
		scores = append(scores, sc)
	}
	if n > 0 {
		out.k1, out.k3, out.corrected, out.rejectedSq = out.k1/n, out.k3/n, out.corrected/n, out.rejectedSq/n
	}
	for _, sc := range scores[max(0, len(scores)-20):] {
		out.trainScore += sc
		tail++
	}
	if tail > 0 {
		out.trainScore /= tail
	}
	out.heldOut, err = d.evalModel(ctx, c.Ckpt.OutputDir, tok, heldOut)
	return out, err
}
