package ppo

import (
	"context"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
)

// TestTrainer_OverlapSameResults runs PPO with GAE (reward, reference and
// critic) twice: the experience calls one after another, and all at once
// (Runtime.Overlap). Metrics (timings aside) and final weights must be
// equal bit for bit: overlapping only changes the wall time.
func TestTrainer_OverlapSameResults(t *testing.T) {
	ctx := context.Background()
	run := func(overlap bool) ([]map[string]float64, map[string][]float32) {
		c := tinyConfigFor(t, rl.EstimatorGAE)
		c.Algo.Advantage.SamplesPerPrompt, c.Rollout.BatchSize = 2, 4
		env := tinyEnv(t)
		p, err := inproc.Build(c.RoleSpec(), env, loadModel)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if p.Critic == nil || p.Reference == nil || p.Reward == nil {
			t.Fatal("want reward, reference and critic")
		}
		tr, err := New(ctx, c, p.Set, Runtime{Tok: env.Tok, Overlap: overlap})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var ms []map[string]float64
		for range 2 {
			m, err := tr.Step(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		return ms, snapshot(weights(t, p.Actor))
	}
	seqM, seqW := run(false)
	ovM, ovW := run(true)
	for i := range seqM {
		for k, v := range seqM[i] {
			if strings.HasPrefix(k, "time_") || k == "tokens_per_sec" {
				continue
			}
			if w, ok := ovM[i][k]; !ok || (w != v && !(v != v && w != w)) {
				t.Errorf("iteration %d: %s = %v sequential, %v overlapped", i+1, k, v, w)
			}
		}
		for _, k := range []string{"time_reward", "time_reference", "time_critic_values", "time_actor_logprobs"} {
			if _, ok := ovM[i][k]; !ok {
				t.Errorf("iteration %d: overlapped run lacks %s", i+1, k)
			}
		}
	}
	for name, a := range seqW {
		b := ovW[name]
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("actor %s[%d]: %v sequential, %v overlapped", name, j, a[j], b[j])
			}
		}
	}
}
