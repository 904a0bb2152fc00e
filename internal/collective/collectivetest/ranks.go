// Package collectivetest runs data-parallel code on goroutine ranks in a
// test and compares what the ranks trained: the harness of the tests
// that check a data-parallel run against the one-process run of the same
// seed. Only tests import it.
package collectivetest

import (
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/nn"
)

// Ranks runs f on n goroutine ranks of one collective.NewLocal group and
// fails t with the first rank's error. A rank whose f fails closes its
// Comm, so that the others fail instead of waiting for it.
func Ranks(t testing.TB, n int, f func(comm collective.Comm) error) {
	t.Helper()
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
