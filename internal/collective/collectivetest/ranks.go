// Package collectivetest runs data-parallel code on goroutine ranks in a
// test and compares what the ranks trained: the harness of the tests
// that check a data-parallel run against the one-process run of the same
// seed. Only tests import it.
package collectivetest

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/nn"
)

// Ranks runs f on n goroutine ranks of one collective.NewLocal group and
// fails t with the first rank's error. A rank whose f fails closes its
// Comm, so that the others fail instead of waiting for it. n = 0 runs f
// once with a nil Comm: one process, no data parallelism.
func Ranks(t testing.TB, n int, f func(comm collective.Comm) error) {
	t.Helper()
	if n == 0 {
		if err := f(nil); err != nil {
			t.Fatal(err)
		}
		return
	}
	comms := collective.NewLocal(n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			if errs[r] = f(comms[r]); errs[r] != nil {
				comms[r].Close()
			}
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d of %d: %v", r, n, err)
		}
	}
}

// Diff is how far one parameter list is from another.
type Diff struct {
	Rel    float64 // the largest per-tensor ‖got−want‖/‖want‖
	Name   string  // the tensor that has it
	MaxAbs float64 // its largest element difference
}

// Compare measures got against want (same names, in order).
func Compare(t testing.TB, got, want nn.Params) Diff {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d parameters, want %d", len(got), len(want))
	}
	var d Diff
	for i, p := range got {
		if p.Name != want[i].Name || len(p.Tensor.Data) != len(want[i].Tensor.Data) {
			t.Fatalf("parameter %d: %s (%d values), want %s (%d)", i, p.Name, len(p.Tensor.Data), want[i].Name, len(want[i].Tensor.Data))
		}
		var d2, w2, maxAbs float64
		for j, x := range p.Tensor.Data {
			e := float64(x) - float64(want[i].Tensor.Data[j])
			d2 += e * e
			w2 += float64(want[i].Tensor.Data[j]) * float64(want[i].Tensor.Data[j])
			maxAbs = max(maxAbs, math.Abs(e))
		}
		if rel := math.Sqrt(d2 / max(w2, 1e-30)); rel > d.Rel || d.Name == "" {
			d = Diff{Rel: rel, Name: p.Name, MaxAbs: maxAbs}
		}
	}
	return d
}

// FirstDifferent is the first parameter of got whose bits differ from
// want's ("" when all are bit-identical).
func FirstDifferent(got, want nn.Params) string {
	for i, p := range got {
		if i >= len(want) || p.Name != want[i].Name || !slices.Equal(bits(p.Tensor.Data), bits(want[i].Tensor.Data)) {
			return p.Name
		}
	}
	if len(want) > len(got) {
		return want[len(got)].Name
	}
	return ""
}

func bits(x []float32) []uint32 {
	out := make([]uint32, len(x))
	for i, v := range x {
		out[i] = math.Float32bits(v)
	}
	return out
}

// MatchesOneProcess is issue 13's bar for a data-parallel trainer: for
// each rank count n, the stage-0 run on n ranks equals the one-process
// run (run(t, 0, 0)) within tol, relative per tensor, and the stage-3 run
// equals the stage-0 run bit for bit. run trains and returns the final
// parameters.
func MatchesOneProcess(t *testing.T, ranks []int, tol float64, run func(t *testing.T, n, stage int) nn.Params) {
	t.Helper()
	want := run(t, 0, 0)
	for _, n := range ranks {
		t.Run(fmt.Sprintf("ranks=%d", n), func(t *testing.T) {
			s0 := run(t, n, 0)
			d := Compare(t, s0, want)
			t.Logf("%d ranks vs one process: worst relative difference %.3g (%s, max element %.3g)", n, d.Rel, d.Name, d.MaxAbs)
			if d.Rel > tol {
				t.Errorf("%s differs by %.3g relative", d.Name, d.Rel)
			}
			if name := FirstDifferent(run(t, n, 3), s0); name != "" {
				t.Errorf("stage 3: %s differs from stage 0", name)
			}
		})
	}
}
