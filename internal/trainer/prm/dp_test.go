package prm

import (
	"context"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/collective/collectivetest"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
)

// TestDataParallel_MatchesOneProcess: a PRM trained on 1, 2 and 4
// goroutine ranks equals the one-process run within 1e-6 (each micro-batch
// adds its tag mean over the step's micro-batch count, whichever rank runs
// it), and ZeRO stage 3 equals stage 0 bit for bit.
func TestDataParallel_MatchesOneProcess(t *testing.T) {
	ds := dataset(t)
	collectivetest.MatchesOneProcess(t, []int{1, 2, 4}, 1e-6, func(t *testing.T, n, stage int) nn.Params {
		c := testConfig(t, ds)
		c.Train.MicroBatchSize, c.Train.BatchSize, c.Train.MaxSteps, c.Train.ZeroStage = 1, 4, 4, stage
		collectivetest.Ranks(t, n, func(comm collective.Comm) error {
			env := testEnv(t)
			env.Comm = comm
			tr, err := New(c, env)
			if err != nil {
				return err
			}
			return tr.Run(context.Background())
		})
		back, err := load.Load(c.Train.Ckpt.OutputDir, load.Options{})
		if err != nil {
			t.Fatalf("saved PRM: %v", err)
		}
		return back.Model.Params()
	})
}
