package zero

import (
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
)

// TestStages trains 5 steps with 8 micro-batches per global batch on 1, 2
// and 4 ranks at every stage, gradient clipping active in some steps and
// weight decay on: the final weights equal the single-process run
// (optim.AdamW with StepGuard's order) within 1e-6 relative per tensor;
// stages 1–3 equal stage 0 bit for bit at the same number of ranks; all
// ranks end with the same bits; each step's gradient norm is the same at
// every stage.
func TestStages(t *testing.T) {
	models := []struct {
		name    string
		base    model.CausalLM
		tokens  int
		maxNorm float64
	}{
		{"tiny-llama", tinyLlama(t), 8, 0.76},
		{"stories260K", stories(t), 16, 27},
	}
	for _, mc := range models {
		t.Run(mc.name, func(t *testing.T) {
			want, ups := reference(t, mc.base, run{ranks: 1, micro: 8, steps: 5, rows: 2, tokens: mc.tokens, maxNorm: mc.maxNorm})
			clipped := 0
			for _, u := range ups {
				if u.GradNorm > mc.maxNorm {
					clipped++
				}
			}
			if clipped == 0 || clipped == len(ups) {
				t.Fatalf("clipping active in %d of %d steps: the test needs some of each (%+v)", clipped, len(ups), ups)
			}
			for _, n := range []int{1, 2, 4} {
				var stage0 []rankResult
				for stage := 0; stage <= 3; stage++ {
					rn := run{stage: stage, ranks: n, micro: 8 / n, steps: 5, rows: 2, tokens: mc.tokens, maxNorm: mc.maxNorm}
					got := train(t, mc.base, rn, hooks{})
					for r := 1; r < n; r++ {
						sameBits(t, "rank vs rank 0", got[r].weights, got[0].weights)
					}
					rel, abs := closeTo(t, "vs single process", got[0].weights, want, 1e-6)
					t.Logf("N=%d stage %d: vs single process: worst tensor %.2g relative, max element diff %.2g", n, stage, rel, abs)
					if stage == 0 {
						stage0 = got
						continue
					}
					sameBits(t, "vs stage 0", got[0].weights, stage0[0].weights)
					for i, u := range got[0].updates {
						if u != stage0[0].updates[i] {
							t.Fatalf("N=%d stage %d step %d: %+v, stage 0 %+v", n, stage, i+1, u, stage0[0].updates[i])
						}
					}
				}
			}
		})
	}
}
