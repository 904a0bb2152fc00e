package ppo

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

func TestTrainer_Step_RemoteReward(t *testing.T) {
	// --reward.remote_url: rewards come from an OpenRLHF-protocol server
	// on loopback, which sees the dataset's labels.
	var labels []string
	grader := reward.Func(func(ctx context.Context, s grade.Sample) (float64, error) {
		labels = append(labels, s.Label)
		return float64(len(s.Response)%5) / 4, nil
	})
	srv, err := reward.NewServer(grader, reward.DefaultServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c := tinyConfigFor(t, rl.EstimatorRLOO)
	c.Reward.Rule.Kind = ""
	c.Reward.RemoteURLs = []string{hs.URL + reward.DefaultPath}
	c.Data.LabelKey = "label"
	tr, _ := newTrainer(t, c, tinyEnv(t))
	m, err := tr.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	finiteAll(t, m, "reward", "policy_loss")
	if len(labels) != 16 || labels[0] == "" {
		t.Fatalf("the server saw %d samples, labels %q", len(labels), labels)
	}
}

// writeRewardModel saves a reward model on a copy of backbone, with a
// random head, stored reward mean/std and tok512, and returns its folder.
func writeRewardModel(t testing.TB, backbone model.CausalLM) string {
	t.Helper()
	bb, err := inproc.Clone(backbone)
	if err != nil {
		t.Fatal(err)
	}
	sm := head.NewScoreModel(bb, 32)
	sm.Head.Init(rand.New(rand.NewPCG(9, 9)))
	for i := range sm.Head.Weight.Data {
		sm.Head.Weight.Data[i] *= 30 // rewards of order 1
	}
	sm.Norm = head.Norm{Normalize: true, Mean: 0.5, Std: 2}
	cfg, err := load.ScoreConfig([]byte(tinyConfig))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "rm")
	if err := load.Save(dir, sm, cfg, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.bin"), assets.Tok512(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTrainer_Step_RewardModel(t *testing.T) {
	// A local reward model scores the rollouts (normalised with its
	// stored mean/std), and the critic starts as a copy of it (OpenRLHF's
	// default), not as the policy with a fresh head.
	env := tinyEnv(t)
	rmDir := writeRewardModel(t, env.Model)
	c := tinyConfigFor(t, rl.EstimatorGAE)
	c.Reward.Rule.Kind = ""
	c.Reward.Model, c.Reward.Normalize = rmDir, true
	tr, p := newTrainer(t, c, env)
	rmLoaded, err := load.Load(rmDir, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	critic0 := weights(t, p.Critic.(*inproc.Critic))
	if d := maxAbsDiff(snapshotModel(rmLoaded.Params()), critic0); d != 0 {
		t.Fatalf("the critic does not start from the reward model (differs by %g)", d)
	}
	m, err := tr.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	finiteAll(t, m, "reward", "value_loss", "policy_loss")
	if m["reward_std"] == 0 {
		t.Fatal("every sample got the same reward")
	}
	// The reward model itself is untouched by the critic's training.
	if d := maxAbsDiff(snapshotModel(rmLoaded.Params()), weights(t, p.Critic.(*inproc.Critic))); d == 0 {
		t.Fatal("the critic did not train")
	}
}

func TestTrainer_EngineLogProbs(t *testing.T) {
	// With π_old from the engine, the first PPO step's ratio is 1 to
	// float rounding instead of exactly.
	c := tinyConfigFor(t, rl.EstimatorGroupNorm)
	c.Train.EngineLogProbs = true
	c.Train.BatchSize = 16
	tr, _ := newTrainer(t, c, tinyEnv(t))
	m, err := tr.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m["time_actor_logprobs"]; ok {
		t.Fatal("the actor recomputed log-probs")
	}
	if math.Abs(m["ratio_mean"]-1) > 1e-4 || m["clip_frac"] != 0 {
		t.Fatalf("first step ratio %g, clip frac %g", m["ratio_mean"], m["clip_frac"])
	}
}

func TestTrainer_Step_MixedReward(t *testing.T) {
	// --reward.model_name_or_path with --reward.rule length,
	// --reward.mix model=1,rule=0.5 and --reward.score_from rule: the
	// reward is the weighted sum, the score the rule's alone, and both
	// parts are logged.
	env := tinyEnv(t)
	c := tinyConfigFor(t, rl.EstimatorGroupNorm)
	c.Reward.Model = writeRewardModel(t, env.Model)
	c.Reward.Mix, c.Reward.ScoreFrom = []reward.Weight{{Name: role.PartModel, Weight: 1}, {Name: role.PartRule, Weight: 0.5}}, role.PartRule
	tr, _ := newTrainer(t, c, env)
	m, err := tr.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	finiteAll(t, m, "reward/model", "reward/rule", "reward_raw", "score")
	if want := m["reward/model"] + 0.5*m["reward/rule"]; math.Abs(m["reward_raw"]-want) > 1e-6 { // rewards are float32
		t.Fatalf("reward_raw %g, want reward/model + 0.5·reward/rule = %g", m["reward_raw"], want)
	}
	if math.Abs(m["score"]-m["reward/rule"]) > 1e-6 || m["reward/model"] == 0 {
		t.Fatalf("score %g, rule part %g, model part %g", m["score"], m["reward/rule"], m["reward/model"])
	}
}
