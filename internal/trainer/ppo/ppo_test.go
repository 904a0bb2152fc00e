package ppo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
)

// weights returns a copy of a role's parameters.
func weights(t testing.TB, r interface {
	Weights(context.Context) (role.Weights, error)
}) nn.Params {
	t.Helper()
	w, err := r.Weights(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return w.Params
}

func TestTrainer_Step_PPO(t *testing.T) {
	// PPO with GAE: a critic from the actor's backbone with a fresh head,
	// a reference, KL in the reward, value clipping.
	ctx := context.Background()
	c := tinyConfigFor(t, rl.EstimatorGAE)
	c.Algo.Advantage.SamplesPerPrompt, c.Rollout.BatchSize = 2, 4
	c.Algo.Advantage.Lambda, c.Algo.Advantage.Gamma = 0.95, 1
	c.Train.MaxEpochs = 2
	tr, p := newTrainer(t, c, tinyEnv(t))
	if p.Critic == nil || p.Reference == nil {
		t.Fatalf("gae with init_coef %g built critic %v, reference %v", c.Algo.KL.InitCoef, p.Critic != nil, p.Reference != nil)
	}
	actor0 := snapshot(weights(t, p.Actor))
	critic0 := snapshot(weights(t, p.Critic.(*inproc.Critic)))
	m, err := tr.Step(ctx)
	if err != nil {
		t.Fatal(err)
	}
	finiteAll(t, m, "reward", "kl", "policy_loss", "value_loss", "entropy", "clip_frac", "approx_kl", "advantage_mean",
		"value_mean", "actor_grad_norm", "critic_grad_norm", "time_generation", "time_experience", "time_train", "time_weight_sync")
	if m["actor_skipped"] != 0 || m["critic_skipped"] != 0 {
		t.Fatalf("skipped steps: %v", m)
	}
	if n := changed(actor0, weights(t, p.Actor)); n == 0 {
		t.Fatal("the actor did not change")
	}
	if n := changed(critic0, weights(t, p.Critic.(*inproc.Critic))); n == 0 {
		t.Fatal("the critic did not change")
	}
	if tr.Version() != 1 {
		t.Fatalf("weight version %d after one iteration, want 1", tr.Version())
	}
	// 2 epochs × 8 samples / batch 8 = 2 steps per role
	if got := tr.actor.steps; got != 2 {
		t.Fatalf("%d actor steps, want 2", got)
	}
}

func TestTrainer_Step_GRPO(t *testing.T) {
	// GRPO: group_norm, n = 4, KL as a k3 loss term, no critic.
	ctx := context.Background()
	c := tinyConfigFor(t, rl.EstimatorGroupNorm)
	c.Algo.KL = rl.KLConfig{InitCoef: 0.01, Estimator: rl.K3, UseLoss: true, Horizon: 10000}
	tr, p := newTrainer(t, c, tinyEnv(t))
	if p.Critic != nil {
		t.Fatal("group_norm built a critic")
	}
	before := snapshot(weights(t, p.Actor))
	for range 2 {
		m, err := tr.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		finiteAll(t, m, "reward", "kl", "kl_loss", "policy_loss", "group_reward_std", "entropy")
		if _, ok := m["value_loss"]; ok {
			t.Fatal("value loss without a critic")
		}
	}
	if changed(before, weights(t, p.Actor)) == 0 {
		t.Fatal("the actor did not change")
	}
	if tr.Version() != 2 {
		t.Fatalf("weight version %d, want 2", tr.Version())
	}
}

func TestTrainer_Step_Estimators(t *testing.T) {
	// Every estimator runs an iteration with finite losses and moves the
	// actor; only gae builds a critic, and init_coef 0 builds no reference.
	for _, est := range []rl.Estimator{rl.EstimatorGAE, rl.EstimatorReinforce, rl.EstimatorReinforceBaseline,
		rl.EstimatorRLOO, rl.EstimatorGroupNorm, rl.EstimatorDrGRPO} {
		t.Run(string(est), func(t *testing.T) {
			c := tinyConfigFor(t, est)
			c.Algo.KL.InitCoef = 0
			tr, p := newTrainer(t, c, tinyEnv(t))
			if (p.Critic != nil) != (est == rl.EstimatorGAE) || p.Reference != nil {
				t.Fatalf("critic %v, reference %v", p.Critic != nil, p.Reference != nil)
			}
			before := snapshot(weights(t, p.Actor))
			m, err := tr.Step(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			finiteAll(t, m, "reward", "policy_loss", "advantage_mean", "advantage_std")
			if changed(before, weights(t, p.Actor)) == 0 {
				t.Fatal("the actor did not change")
			}
		})
	}
}

func TestTrainer_Step_MicroBatchInvariance(t *testing.T) {
	// train.micro_batch_size 8 (no accumulation) and 1 (8 micro-batches
	// accumulated) give the same actor and critic after an iteration.
	run := func(micro int) (nn.Params, nn.Params, map[string]float64) {
		c := tinyConfigFor(t, rl.EstimatorGAE)
		c.Algo.Advantage.SamplesPerPrompt = 2
		c.Train.MicroBatchSize = micro
		tr, p := newTrainer(t, c, tinyEnv(t))
		m, err := tr.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return weights(t, p.Actor), weights(t, p.Critic.(*inproc.Critic)), m
	}
	a8, c8, m8 := run(8)
	a1, c1, m1 := run(1)
	if d := maxAbsDiff(snapshot(a8), a1); d > 1e-5 {
		t.Fatalf("actor differs by %g between micro-batch 8 and 1", d)
	}
	if d := maxAbsDiff(snapshot(c8), c1); d > 1e-5 {
		t.Fatalf("critic differs by %g", d)
	}
	for _, k := range []string{"policy_loss", "value_loss", "actor_grad_norm", "critic_grad_norm"} {
		if !near(m8[k], m1[k], 1e-4) {
			t.Fatalf("%s: %g with micro-batch 8, %g with 1", k, m8[k], m1[k])
		}
	}
}

func TestTrainer_Step_SkippedRolesInvariance(t *testing.T) {
	// GRPO without a KL penalty needs neither a critic nor a reference.
	// Giving it both (computed, then ignored) must leave the actor's
	// training bit for bit the same. (Each run gets its own env: without
	// a reference the actor trains the loaded model in place.)
	c := tinyConfigFor(t, rl.EstimatorGroupNorm)
	c.Algo.KL.InitCoef = 0
	c.Train.MaxIterations = 2
	lean, lp := newTrainer(t, c, tinyEnv(t))
	env := tinyEnv(t)
	if lp.Critic != nil || lp.Reference != nil {
		t.Fatal("unneeded roles were built")
	}
	full := c
	full.Ckpt.OutputDir = filepath.Join(t.TempDir(), "full")
	fp, err := NewInProc(full, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	roles := fp.Roles
	ref, err := inproc.Clone(env.Model)
	if err != nil {
		t.Fatal(err)
	}
	roles.Reference = inproc.NewReference(ref, 0)
	gae := tinyConfigFor(t, rl.EstimatorGAE)
	critic, err := buildCritic(gae, env, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	roles.Critic = critic
	ft, err := New(context.Background(), full, roles, Env{Tok: env.Tok})
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	for i := range 2 {
		ml, err := lean.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		mf, err := ft.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := mf["kl"]; !ok {
			t.Fatal("the reference was not computed")
		}
		if _, ok := mf["value_loss"]; !ok {
			t.Fatal("the critic was not trained")
		}
		if ml["policy_loss"] != mf["policy_loss"] || ml["reward"] != mf["reward"] {
			t.Fatalf("iteration %d: policy loss %v vs %v, reward %v vs %v", i, ml["policy_loss"], mf["policy_loss"], ml["reward"], mf["reward"])
		}
	}
	if d := maxAbsDiff(snapshot(weights(t, lp.Actor)), weights(t, fp.Actor)); d != 0 {
		t.Fatalf("the actors differ by %g", d)
	}
}

func TestTrainer_WeightVersion(t *testing.T) {
	// Rollouts report the version they were sampled with: 0 before the
	// first publish, then +1 per iteration; while the critic warms up
	// (actor frozen) nothing is published.
	ctx := context.Background()
	c := tinyConfigFor(t, rl.EstimatorGAE)
	c.Critic.FreezingSteps = 1
	c.Train.MaxIterations = 3
	tr, p := newTrainer(t, c, tinyEnv(t))
	versions := func() []int64 {
		r, err := tr.sample(ctx, tr.prompts[:2], generate.SamplingParams{N: 2, MaxNewTokens: 4, Temperature: 1}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return r.versions
	}
	before := snapshot(weights(t, p.Actor))
	for i, want := range []int64{0, 0, 1, 2} {
		for _, v := range versions() {
			if v != want {
				t.Fatalf("after %d iterations a rollout reports version %d, want %d", i, v, want)
			}
		}
		if i == 1 && changed(before, weights(t, p.Actor)) != 0 {
			t.Fatal("the actor changed during the critic warm-up")
		}
		if i < 3 {
			if _, err := tr.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A publish with a version below 1 is refused.
	if err := p.Rollout.LoadWeights(ctx, role.Weights{Version: 0, Params: weights(t, p.Actor)}); err == nil {
		t.Fatal("version 0 was accepted")
	}
}

func TestTrainer_Run_ResumeBitIdentical(t *testing.T) {
	// Three iterations straight equal two, a stop, a resume and one more:
	// actor, critic, optimizers, RNG, prompt cursor, KL controller and
	// weight version all come back from the checkpoint.
	base := tinyConfigFor(t, rl.EstimatorGAE)
	base.Train.MaxIterations = 3
	base.Algo.KL.Target, base.Algo.KL.InitCoef = 0.001, 0.05 // adaptive: its state must be restored too
	base.Ckpt.SaveSteps = 1

	straight := base
	straight.Ckpt.OutputDir = filepath.Join(t.TempDir(), "straight")
	st, sp := newTrainer(t, straight, tinyEnv(t))
	if err := st.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	resumed := base
	resumed.Ckpt.OutputDir = filepath.Join(t.TempDir(), "resumed")
	resumed.Train.StopAtStep = 2
	r1, _ := newTrainer(t, resumed, tinyEnv(t))
	if err := r1.Run(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("run with stop_at_step 2: %v", err)
	}
	resumed.Train.StopAtStep, resumed.Ckpt.LoadEnable = 0, true
	r2, rp := newTrainer(t, resumed, tinyEnv(t))
	if r2.Iteration() != 2 || r2.Version() != 2 {
		t.Fatalf("resumed at iteration %d, version %d; want 2, 2", r2.Iteration(), r2.Version())
	}
	if err := r2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(snapshot(weights(t, sp.Actor)), weights(t, rp.Actor)); d != 0 {
		t.Fatalf("actor differs by %g after resume", d)
	}
	if d := maxAbsDiff(snapshot(weights(t, sp.Critic.(*inproc.Critic))), weights(t, rp.Critic.(*inproc.Critic))); d != 0 {
		t.Fatalf("critic differs by %g after resume", d)
	}
	if st.KLCoef() != r2.KLCoef() || st.KLCoef() == base.Algo.KL.InitCoef {
		t.Fatalf("KL coefficient %g straight, %g resumed (start %g)", st.KLCoef(), r2.KLCoef(), base.Algo.KL.InitCoef)
	}
	last := func(tr *Trainer) map[string]float64 {
		for i := len(tr.Metrics()) - 1; i >= 0; i-- {
			if r := tr.Metrics()[i]; r.Split == "train" && r.Step == 3 {
				return r.Values
			}
		}
		t.Fatal("no metrics for iteration 3")
		return nil
	}
	for _, k := range []string{"reward", "policy_loss", "value_loss", "kl"} {
		if last(st)[k] != last(r2)[k] {
			t.Fatalf("iteration 3 %s: %v straight, %v resumed", k, last(st)[k], last(r2)[k])
		}
	}
	for _, f := range []string{"config.json", "model.safetensors", "critic/model.safetensors", "metrics.jsonl", "report.html", "reward.png"} {
		if _, err := os.Stat(filepath.Join(resumed.Ckpt.OutputDir, f)); err != nil {
			t.Errorf("run output %s: %v", f, err)
		}
	}
}

func near(a, b, tol float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	s := b
	if s < 0 {
		s = -s
	}
	return d <= tol*max(1, s)
}
