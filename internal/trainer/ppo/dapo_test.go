package ppo

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"path/filepath"
	"testing"

	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
)

// newTrainerWithReward is newTrainer with src as the reward role.
func newTrainerWithReward(t testing.TB, c Config, src reward.Source) (*Trainer, *inproc.Roles) {
	t.Helper()
	env := tinyEnv(t)
	p, err := inproc.Build(c.RoleSpec(), env, loadModel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.Reward = inproc.NewReward(src)
	tr, err := New(context.Background(), c, p.Set, Runtime{Tok: env.Tok})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.out.Close() })
	return tr, p
}

// byLabel scores by the prompt's label (writePrompts gives i mod 7):
// labels 0 and 1 always score 1 and 0 (uniform groups), the others by a
// hash of the response (mixed groups, mostly).
var byLabel = reward.Func(func(ctx context.Context, s grade.Sample) (float64, error) {
	switch s.Label {
	case "0":
		return 1, nil
	case "1":
		return 0, nil
	}
	h := fnv.New32a()
	h.Write([]byte(s.Response))
	return float64(h.Sum32() % 2), nil
})

// dapoConfig is GRPO with dynamic filtering on the label-keyed prompts.
func dapoConfig(t testing.TB, rounds int) Config {
	c := tinyConfigFor(t, rl.EstimatorGroupNorm)
	c.Data.LabelKey = "label"
	c.Algo.KL.InitCoef = 0
	c.Algo.DynamicFilter = DynamicFilterConfig{Enable: true, Range: rl.DefaultDynamicFilter(), MaxRounds: rounds}
	return c
}

func TestTrainer_Filtered(t *testing.T) {
	// Every kept group has scores that are not all equal, the batch never
	// exceeds rollout.batch_size groups, and generated = kept + dropped +
	// unused; the forced-uniform prompts (labels 0, 1) are all dropped.
	for _, rounds := range []int{1, 3, 8} {
		c := dapoConfig(t, rounds)
		tr, _ := newTrainerWithReward(t, c, byLabel)
		r, st, err := tr.filtered(context.Background(), newPhaseTimer())
		if err != nil {
			t.Fatal(err)
		}
		if st.rounds < 1 || st.rounds > rounds {
			t.Fatalf("rounds %d, bound %d", st.rounds, rounds)
		}
		if r.groups() > c.Rollout.BatchSize {
			t.Fatalf("%d groups kept, batch size %d", r.groups(), c.Rollout.BatchSize)
		}
		if st.rounds < rounds && r.groups() != c.Rollout.BatchSize {
			t.Fatalf("stopped after %d of %d rounds with %d groups", st.rounds, rounds, r.groups())
		}
		if got := r.groups() + st.dropped + st.unused; got != st.generated || st.generated != st.rounds*c.Rollout.BatchSize {
			t.Fatalf("kept %d + dropped %d + unused %d ≠ generated %d (%d rounds)", r.groups(), st.dropped, st.unused, st.generated, st.rounds)
		}
		if len(r.results) != r.seqs.Len() || len(r.texts) != r.seqs.Len() || len(r.engineLP) != r.seqs.Len() {
			t.Fatalf("ragged rollout: %d results, %d texts, %d log-prob rows for %d sequences", len(r.results), len(r.texts), len(r.engineLP), r.seqs.Len())
		}
		for g := range r.groups() {
			rows := r.results[g*r.g : (g+1)*r.g]
			if !c.Algo.DynamicFilter.Range.Keep(grade.Scores(rows)) {
				t.Fatalf("kept group %d has scores %v", g, grade.Scores(rows))
			}
			if l := r.prompts[g*r.g].Label; l == "0" || l == "1" {
				t.Fatalf("kept a group of label %s (always uniform)", l)
			}
			for j := 1; j < r.g; j++ {
				if r.prompts[g*r.g+j].Text != r.prompts[g*r.g].Text {
					t.Fatalf("group %d mixes prompts", g)
				}
			}
		}
	}
}

func TestTrainer_Step_DynamicFilter(t *testing.T) {
	// One iteration: the filtering counts are logged, training runs on
	// the kept groups only (a batch that is not full ends with a smaller
	// optimizer step) and the policy is published.
	c := dapoConfig(t, 1)
	c.Train.BatchSize, c.Train.MicroBatchSize = 8, 4
	tr, p := newTrainerWithReward(t, c, byLabel)
	actor0 := snapshot(weights(t, p.Actor))
	m, err := tr.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	finiteAll(t, m, "dynamic_filtering_rounds", "dynamic_filtering_dropped", "dynamic_filtering_dropped_frac",
		"dynamic_filtering_unused", "dynamic_filtering_score", "policy_loss")
	if m["dynamic_filtering_rounds"] != 1 {
		t.Fatalf("rounds %g, want 1", m["dynamic_filtering_rounds"])
	}
	kept := c.Rollout.BatchSize - int(m["dynamic_filtering_dropped"])
	if kept < 1 || kept == c.Rollout.BatchSize {
		t.Fatalf("this (seeded) draw kept %d of %d groups; the test needs a partial batch: change the seed", kept, c.Rollout.BatchSize)
	}
	// kept·n samples in steps of 8: ⌈kept·4/8⌉ actor steps
	if want := (kept*4 + 7) / 8; tr.actor.steps != want {
		t.Fatalf("%d actor steps for %d kept groups, want %d", tr.actor.steps, kept, want)
	}
	if changed(actor0, weights(t, p.Actor)) == 0 || tr.Version() != 1 {
		t.Fatalf("the policy did not train on the kept groups (version %d)", tr.Version())
	}
	// The score over every generated sample is the unfiltered mean.
	if s := m["dynamic_filtering_score"]; s <= 0 || s >= 1 {
		t.Fatalf("generated score %g", s)
	}
}

func TestTrainer_Step_DynamicFilterNothingKept(t *testing.T) {
	// A reward that never varies within a group: every round drops every
	// group, the round bound stops the search, and the iteration is
	// skipped with the policy untouched.
	c := dapoConfig(t, 3)
	constant := reward.Func(func(ctx context.Context, s grade.Sample) (float64, error) { return 1, nil })
	tr, p := newTrainerWithReward(t, c, constant)
	actor0 := snapshot(weights(t, p.Actor))
	m, err := tr.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m["skipped_iteration"] != 1 || m["dynamic_filtering_rounds"] != 3 || m["dynamic_filtering_dropped"] != 12 ||
		m["dynamic_filtering_dropped_frac"] != 1 {
		t.Fatalf("metrics %v", m)
	}
	if changed(actor0, weights(t, p.Actor)) != 0 || tr.Version() != 0 || tr.Iteration() != 1 {
		t.Fatalf("a skipped iteration changed the policy (version %d, iteration %d)", tr.Version(), tr.Iteration())
	}
}

func TestTrainer_OverlongPenalty(t *testing.T) {
	// --reward.overlong_buffer_len 4 with max_new_tokens 12: a response of
	// L tokens loses min(L − 8, 4)/4 · factor of its reward when L > 8,
	// in the rewards advantages start from and in the metrics.
	for _, factor := range []float64{1, 0.5} {
		c := tinyConfigFor(t, rl.EstimatorGroupNorm)
		c.Algo.KL.InitCoef = 0
		c.Reward.Length = rl.LengthPenalty{OverlongBufferLen: 4, OverlongFactor: factor}
		constant := reward.Func(func(ctx context.Context, s grade.Sample) (float64, error) { return 1, nil })
		tr, _ := newTrainerWithReward(t, c, constant)
		m := newPhaseTimer()
		r, _, err := tr.collectBatch(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		e, err := tr.makeExperience(context.Background(), r, m)
		if err != nil {
			t.Fatal(err)
		}
		touched := 0
		for i, got := range e.rewards {
			l := r.seqs.ResponseLen(i)
			want := 1 + rl.OverlongPenalty(l, 12, 4, factor)
			if math.Abs(float64(got)-want) > 1e-6 {
				t.Fatalf("factor %g: sample %d of %d tokens: reward %g, want %g", factor, i, l, got, want)
			}
			if l > 8 {
				touched++
			}
		}
		if touched == 0 || e.overlong != touched {
			t.Fatalf("factor %g: %d samples over 8 tokens, %d penalised", factor, touched, e.overlong)
		}
	}
}

func TestDynamicFilterConfig_Validate(t *testing.T) {
	ok := DynamicFilterConfig{Enable: true, Range: rl.DefaultDynamicFilter(), MaxRounds: 4}
	cases := []struct {
		name string
		c    DynamicFilterConfig
		n    int
		ok   bool
	}{
		{"default", ok, 8, true},
		{"off ignores the rest", DynamicFilterConfig{}, 1, true},
		{"empty range", DynamicFilterConfig{Enable: true, Range: rl.DynamicFilter{Low: 1, High: 1}, MaxRounds: 4}, 8, false},
		{"no rounds", DynamicFilterConfig{Enable: true, Range: rl.DefaultDynamicFilter()}, 8, false},
		{"one sample per prompt", ok, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.c.Validate(tc.n); (err == nil) != tc.ok {
				t.Fatalf("Validate(%d) = %v, want ok %v", tc.n, err, tc.ok)
			}
		})
	}
	// The trainer's Validate includes it.
	c := DefaultConfig()
	c.Data.PromptDataset = "p.jsonl"
	c.Reward.Rule.Kind = grade.RuleExact
	c.Algo.DynamicFilter = DynamicFilterConfig{Enable: true, Range: rl.DefaultDynamicFilter()}
	if err := c.Validate(); err == nil {
		t.Fatal("Config.Validate accepted max_rounds 0")
	}
}

func TestTrainer_Run_ResumeDynamicFilter(t *testing.T) {
	// The extra rounds draw prompts from the checkpointed sampler and
	// seeds from the checkpointed generator: three filtered iterations
	// straight equal two, a stop, a resume and one more, bit for bit.
	base := dapoConfig(t, 3)
	base.Train.MaxIterations, base.Ckpt.SaveSteps = 3, 1
	run := func(dir string, stopAt int, load bool) *Trainer {
		c := base
		c.Ckpt.OutputDir, c.Train.StopAtStep, c.Ckpt.LoadEnable = dir, stopAt, load
		tr, _ := newTrainerWithReward(t, c, byLabel)
		if err := tr.Run(context.Background()); err != nil && !errors.Is(err, ErrStopped) {
			t.Fatal(err)
		}
		return tr
	}
	st := run(filepath.Join(t.TempDir(), "straight"), 0, false)
	dir := filepath.Join(t.TempDir(), "resumed")
	run(dir, 2, false)
	r2 := run(dir, 0, true)
	metrics := func(tr *Trainer) map[string]float64 {
		for _, r := range tr.Metrics() {
			if r.Split == "train" && r.Step == 3 {
				return r.Values
			}
		}
		t.Fatal("no metrics for iteration 3")
		return nil
	}
	a, b := metrics(st), metrics(r2)
	for _, k := range []string{"dynamic_filtering_rounds", "dynamic_filtering_dropped", "dynamic_filtering_score", "reward", "policy_loss"} {
		if a[k] != b[k] {
			t.Fatalf("iteration 3 %s: %v straight, %v resumed", k, a[k], b[k])
		}
	}
	wa, err := st.roles.Actor.Weights(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(snapshot(wa.Params), weights(t, r2.roles.Actor)); d != 0 {
		t.Fatalf("actor differs by %g after resume", d)
	}
}
