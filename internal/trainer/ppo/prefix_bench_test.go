package ppo

import (
	"context"
	"slices"
	"testing"
)

// BenchmarkAgentPrefixCaching times the generation phase of multi-turn
// GRPO steps (the agent path: every turn re-sends the whole episode) on
// stories260K with the arithmetic environment, 3 turns, 8 prompts × 8
// episodes, with and without --rollout.enable_prefix_caching, in
// alternating rounds (a fresh trainer per round and mode, one step each);
// it reports the medians of time_generation and the hit rate:
//
//	go test -run '^$' -bench AgentPrefixCaching -benchtime 5x ./internal/trainer/ppo/
func BenchmarkAgentPrefixCaching(b *testing.B) {
	e := storiesEnv(b)
	var on, off []float64
	var hit float64
	for r := 0; r < b.N; r++ {
		for _, cache := range []bool{r%2 == 0, r%2 != 0} {
			c := agentConfig(b, "steps=3,max=9", 3)
			c.Data.MaxLen = 256
			c.Rollout.BatchSize, c.Algo.Advantage.SamplesPerPrompt, c.Rollout.MaxNewTokens = 8, 8, 8
			c.Train.BatchSize, c.Train.MicroBatchSize = 64, 16
			c.Rollout.EnablePrefixCaching = cache
			tr, _ := newAgentTrainer(b, c, e, nil)
			m, err := tr.Step(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if cache {
				on, hit = append(on, m["time_generation"]), m["prefix_cache_hit_rate"]
			} else {
				off = append(off, m["time_generation"])
			}
		}
	}
	med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	b.ReportMetric(med(off)*1e3, "ms-gen-off")
	b.ReportMetric(med(on)*1e3, "ms-gen-on")
	b.ReportMetric(med(off)/med(on), "speedup")
	b.ReportMetric(hit, "hit-rate")
	b.Logf("rounds %d: off %v s, on %v s", b.N, off, on)
}
