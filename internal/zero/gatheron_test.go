package zero

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/optim"
)

// TestGatherOn: at stage 3 on 3 ranks, GatherOn(1) gives rank 1 the whole
// model, bit for bit the weights it started from, while ranks 0 and 2
// keep their parameters released and hold no more memory than before; at
// stage 1 it changes nothing anywhere.
func TestGatherOn(t *testing.T) {
	base := tinyLlama(t)
	want := weights(base.Params())
	for _, stage := range []int{1, 3} {
		errs := onRanks(t, 3, func(ctx context.Context, c collective.Comm) error {
			m, err := model.Clone(base)
			if err != nil {
				return err
			}
			e, err := New(ctx, c, m, Config{Stage: stage, Optim: optim.DefaultConfig()})
			if err != nil {
				return err
			}
			before := e.Memory()
			if _, err := e.GatherOn(ctx, 3); err == nil {
				return errors.New("GatherOn(3) of 3 ranks accepted")
			}
			release, err := e.GatherOn(ctx, 1)
			if err != nil {
				return err
			}
			got := weights(m.Params())
			whole := c.Rank() == 1 || stage < 3
			for name, w := range want {
				switch {
				case whole && !slicesEqualBits(got[name], w):
					return fmt.Errorf("stage %d rank %d: %s is not the whole weight", stage, c.Rank(), name)
				case !whole && len(got[name]) != 0:
					return fmt.Errorf("stage %d rank %d: %s holds %d values, want none (released)", stage, c.Rank(), name, len(got[name]))
				}
			}
			if after := e.Memory(); !whole && after != before {
				return fmt.Errorf("stage %d rank %d: memory %+v while rank 1 reads, %+v before", stage, c.Rank(), after, before)
			}
			release()
			if err := e.BeginMicro(ctx); err != nil { // released: training goes on
				return err
			}
			return e.EndMicro(ctx)
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
}
