package ppo

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/train"
)

// storiesEnv opens the embedded stories260K with its tokenizer.
func storiesEnv(t testing.TB) train.Setup {
	t.Helper()
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return train.Setup{Bundle: b}
}

// spreadPrompts writes n story openings of 1 to 9 sentences, so that the
// sequences of a batch differ in length by up to ~100 tokens.
func spreadPrompts(t testing.TB, n int) string {
	t.Helper()
	sentences := []string{"Once upon a time, there was a little girl named Lily.", "She liked to play in the park.",
		"One day, she saw a big red ball.", "Her mom said it was time to go home.", "The sun was warm and the sky was blue.",
		"Tom wanted to help his friend.", "They ran to the tree.", "A small bird sang a song.", "Everyone was happy."}
	var b strings.Builder
	for i := range n {
		k := 1 + (i*5)%len(sentences)
		line, _ := json.Marshal(map[string]any{"input": strings.Join(sentences[:k], " "), "label": i % 3})
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "prompts.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// recordingActor records the sequence lengths of every micro-batch the
// actor trains on.
type recordingActor struct {
	role.Actor
	micro [][]int
	steps []role.ActorStepResult
}

func (r *recordingActor) TrainStep(ctx context.Context, req role.ActorStep) (role.ActorStepResult, error) {
	for _, mb := range req.MicroBatches {
		lens := make([]int, mb.Seqs.Len())
		for i, toks := range mb.Seqs.Tokens {
			lens[i] = len(toks)
		}
		r.micro = append(r.micro, lens)
	}
	res, err := r.Actor.TrainStep(ctx, req)
	r.steps = append(r.steps, res)
	return res, err
}

// recordingCritic records the critic's step results.
type recordingCritic struct {
	role.Critic
	steps []role.CriticStepResult
}

func (r *recordingCritic) TrainStep(ctx context.Context, req role.CriticStep) (role.CriticStepResult, error) {
	res, err := r.Critic.TrainStep(ctx, req)
	r.steps = append(r.steps, res)
	return res, err
}

// sharedRows counts the micro-batches whose packed layout has fewer rows
// than sequences (inproc.PackAlign-aligned first fit, rows as long as the
// longest sequence).
func sharedRows(micro [][]int) int {
	n := 0
	for _, lens := range micro {
		samples := make([]data.Sample, len(lens))
		for i, l := range lens {
			samples[i] = data.Sample{IDs: make([]int32, l), Loss: make([]bool, l)}
		}
		if data.PackAligned(samples, slices.Max(lens), inproc.PackAlign, 0).B < len(lens) {
			n++
		}
	}
	return n
}

// packedResult is what a run of packedRun leaves to compare.
type packedResult struct {
	metrics       []map[string]float64 // per iteration
	actor, critic map[string][]float32 // final weights; critic nil without one
	actorSteps    []role.ActorStepResult
	criticSteps   []role.CriticStepResult
	micro         [][]int // sequence lengths of the actor's micro-batches
}

// packedRun trains stories260K for iters iterations with
// --ds.packing_samples pack.
func packedRun(t *testing.T, c Config, pack bool, iters int) packedResult {
	t.Helper()
	c.DS.PackingSamples = pack
	c.Ckpt.OutputDir = filepath.Join(t.TempDir(), "run")
	env := storiesEnv(t)
	p, err := inproc.Build(c.RoleSpec(), env, loadModel)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ra, rc := &recordingActor{Actor: p.Actor}, &recordingCritic{Critic: p.Critic}
	roles := p.Set
	roles.Actor = ra
	if p.Critic != nil {
		roles.Critic = rc
	}
	tr, err := New(context.Background(), c, roles, Runtime{Tok: env.Tok})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var res packedResult
	for range iters {
		m, err := tr.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		res.metrics = append(res.metrics, m)
	}
	if p.Critic != nil {
		res.critic = snapshot(weights(t, p.Critic.(*inproc.Critic)))
	}
	res.actor, res.actorSteps, res.criticSteps, res.micro = snapshot(weights(t, p.Actor)), ra.steps, rc.steps, ra.micro
	return res
}

// packTol is the bar of packed against padded runs: per-tensor weights
// ‖a − b‖/‖b‖ and every loss, gradient norm and statistic relative.
const packTol = 1e-6

// relTensor is ‖a − b‖/‖b‖ and the largest element difference.
func relTensor(a, b []float32) (rel, maxAbs float64) {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num, den = num+d*d, den+float64(b[i])*float64(b[i])
		maxAbs = math.Max(maxAbs, math.Abs(d))
	}
	return math.Sqrt(num / math.Max(den, 1e-300)), maxAbs
}

// checkWeights fails unless every tensor of a is within packTol of b.
func checkWeights(t *testing.T, what string, a, b map[string][]float32) {
	t.Helper()
	var worst, worstAbs float64
	var name string
	for k, bv := range b {
		rel, d := relTensor(a[k], bv)
		if !(rel <= packTol) {
			t.Errorf("%s %s: packed differs from padded by %.3g relative (max element %.3g)", what, k, rel, d)
		}
		if rel >= worst {
			worst, name = rel, k
		}
		worstAbs = math.Max(worstAbs, d)
	}
	t.Logf("%s: worst tensor %s, %.3g relative; max element difference %.3g", what, name, worst, worstAbs)
}

// checkFirstSteps compares the first actor and critic steps, which start
// from the same weights: losses and gradient norms within packTol.
func checkFirstSteps(t *testing.T, packed, padded packedResult) {
	t.Helper()
	a, b := packed.actorSteps[0], padded.actorSteps[0]
	vals := [][3]float64{{a.Loss, b.Loss}, {a.PolicyLoss, b.PolicyLoss}, {a.KLLoss, b.KLLoss}, {a.GradNorm, b.GradNorm}, {a.Entropy, b.Entropy}}
	if len(padded.criticSteps) > 0 {
		ca, cb := packed.criticSteps[0], padded.criticSteps[0]
		vals = append(vals, [3]float64{ca.Loss, cb.Loss}, [3]float64{ca.GradNorm, cb.GradNorm})
	}
	var worst float64
	for i, v := range vals {
		d := math.Abs(v[0]-v[1]) / math.Max(math.Abs(v[1]), 1e-6)
		if !(d <= packTol) {
			t.Errorf("first step, value %d (loss, policy, KL, grad norm, entropy, critic loss, critic grad norm): %.9g packed, %.9g padded", i, v[0], v[1])
		}
		worst = math.Max(worst, d)
	}
	t.Logf("first actor and critic steps: losses and gradient norms within %.3g relative", worst)
}

// checkMetrics compares every metric of every iteration but timings,
// relative, within laterTol (absolute below 1e-6 in magnitude, where a
// relative difference means nothing: a whitened advantage mean is
// ~1e-9). After the first step the runs start each step from weights that
// differ by float rounding (~3e-8 relative), which statistics made of
// differences of log-probs (KL, approx_kl, ratios, a loss over whitened
// advantages) magnify: two padded runs that differ only in
// --rollout.micro_batch_size differ as much (measured: policy loss 4e-5,
// approx_kl 2e-4 relative at iteration 3). Clip fractions count ties
// broken by rounding (a value at its rollout value): one token more or
// less.
func checkMetrics(t *testing.T, packed, padded []map[string]float64) {
	t.Helper()
	const laterTol = 1e-2
	var worst float64
	var name string
	for i := range padded {
		for k, b := range padded[i] {
			if strings.HasPrefix(k, "time_") || k == "tokens_per_sec" {
				continue
			}
			a, ok := packed[i][k]
			d := math.Abs(a-b) / math.Max(math.Abs(b), 1e-6)
			bad := !ok || !(d <= laterTol)
			if strings.HasSuffix(k, "clip_frac") {
				bad = !ok || !(math.Abs(a-b) <= 0.01)
			} else if strings.HasPrefix(k, "mismatch/") {
				// engine vs trainer log-probs: rounding noise (~1e-6)
				// that packing computes in another order
				bad = !ok || !(math.Abs(a-b) <= 1e-5)
			} else if d > worst {
				worst, name = d, fmt.Sprintf("%s (iteration %d)", k, i+1)
			}
			if bad {
				t.Errorf("iteration %d: %s = %.9g packed, %.9g padded (%.3g)", i+1, k, a, b, d)
			}
		}
	}
	t.Logf("metrics: worst %s, %.3g relative", name, worst)
}

// TestTrainer_PackedEqualsPadded trains stories260K for a few iterations
// with and without --ds.packing_samples: PPO with GAE (actor, critic,
// reference, KL in the reward, two epochs) and GRPO (k3 KL loss). The
// first optimizer steps (same weights) agree within 1e-6 relative in
// loss and gradient norm, the final weights within 1e-6 relative per
// tensor, the statistics as checkMetrics says; and packing did share
// rows.
func TestTrainer_PackedEqualsPadded(t *testing.T) {
	if testing.Short() {
		t.Skip("four short RL runs of stories260K")
	}
	base := func(est rl.Estimator) Config {
		c := tinyConfigFor(t, est)
		c.Data.PromptDataset, c.Data.MaxLen = spreadPrompts(t, 16), 256
		c.Rollout.BatchSize, c.Rollout.MaxNewTokens = 4, 24
		c.Actor.Optim.LR, c.Critic.Optim.LR = 1e-4, 1e-4
		c.Reward.Rule.Length.Target = 100 // characters: 24 tokens of stories260K make 60–120
		return c
	}
	cases := []struct {
		name string
		cfg  func() Config
	}{
		{"GAE", func() Config {
			c := base(rl.EstimatorGAE)
			c.Algo.Advantage.SamplesPerPrompt, c.Train.MaxEpochs = 2, 2
			c.Algo.Advantage.Lambda, c.Algo.Advantage.Gamma = 0.95, 1
			return c
		}},
		{"GRPO", func() Config {
			c := base(rl.EstimatorGroupNorm)
			c.Algo.KL = rl.KLConfig{InitCoef: 0.01, Estimator: rl.K3, UseLoss: true, Horizon: 10000}
			return c
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg()
			pad, packed := packedRun(t, c, false, 3), packedRun(t, c, true, 3)
			if n := sharedRows(pad.micro); n == 0 {
				t.Fatalf("no micro-batch of %v packs into fewer rows: the test compares nothing", pad.micro)
			}
			if _, ok := pad.metrics[0]["kl"]; !ok || pad.actorSteps[0].GradNorm == 0 {
				t.Fatalf("no reference was used, or no gradient: %v", pad.metrics[0])
			}
			if (pad.critic == nil) != (tc.name != "GAE") {
				t.Fatalf("critic %v for %s", pad.critic != nil, tc.name)
			}
			checkFirstSteps(t, packed, pad)
			checkMetrics(t, packed.metrics, pad.metrics)
			checkWeights(t, "actor", packed.actor, pad.actor)
			if pad.critic != nil {
				checkWeights(t, "critic", packed.critic, pad.critic)
			}
		})
	}
}
