package rm

import (
	"context"
	"fmt"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/collective/collectivetest"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
)

// TestDataParallel_MatchesOneProcess: a reward model trained on 1, 2 and 4
// goroutine ranks equals the one-process run within 1e-6, and ZeRO
// stage 3 equals stage 0 bit for bit (issue 13's bar for RM).
func TestDataParallel_MatchesOneProcess(t *testing.T) {
	ds := dataset(t)
	run := func(n, stage int) nn.Params {
		c := testConfig(t, ds)
		c.Train.MicroBatchSize, c.Train.BatchSize, c.Train.MaxSteps, c.Train.ZeroStage = 1, 4, 5, stage
		train := func(comm collective.Comm) error {
			env := testEnv(t)
			env.Comm = comm
			tr, err := New(c, env)
			if err != nil {
				return err
			}
			return tr.Run(context.Background())
		}
		if n == 0 {
			if err := train(nil); err != nil {
				t.Fatal(err)
			}
		} else {
			collectivetest.Ranks(t, n, train)
		}
		back, err := load.Load(c.Train.Ckpt.OutputDir, load.Options{})
		if err != nil || back.Score == nil {
			t.Fatalf("saved reward model: %v", err)
		}
		return back.Score.Params()
	}
	want := run(0, 0)
	for _, n := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("ranks=%d", n), func(t *testing.T) {
			s0 := run(n, 0)
			d := collectivetest.Compare(t, s0, want)
			t.Logf("%d ranks vs one process: worst relative difference %.3g (%s, max element %.3g)", n, d.Rel, d.Name, d.MaxAbs)
			if d.Rel > 1e-6 {
				t.Errorf("%s differs by %.3g relative", d.Name, d.Rel)
			}
			if name := collectivetest.FirstDifferent(run(n, 3), s0); name != "" {
				t.Errorf("stage 3: %s differs from stage 0", name)
			}
		})
	}
}
