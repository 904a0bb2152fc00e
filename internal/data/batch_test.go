package data

import (
	"slices"
	"testing"
)

func sample(ids []int32, loss ...bool) Sample { return Sample{IDs: ids, Loss: loss} }

func TestPad(t *testing.T) {
	a := sample([]int32{1, 5, 6, 2}, false, false, true, true)
	b := sample([]int32{1, 7}, false, true)
	bt := Pad([]Sample{a, b}, 0)
	if bt.B != 2 || bt.T != 4 || bt.Seg != nil {
		t.Fatalf("B=%d T=%d seg=%v", bt.B, bt.T, bt.Seg)
	}
	const x = IgnoreIndex
	if want := []int32{1, 5, 6, 2, 1, 7, 0, 0}; !slices.Equal(bt.IDs, want) {
		t.Fatalf("ids %v, want %v", bt.IDs, want)
	}
	if want := []int32{x, 6, 2, x, 7, x, x, x}; !slices.Equal(bt.Targets, want) {
		t.Fatalf("targets %v, want %v", bt.Targets, want)
	}
	if bt.LossTokens() != 3 || bt.Spans[1] != (Span{Row: 1, Start: 0, Len: 2}) || bt.Spans[1].Last(4) != 5 {
		t.Fatalf("loss tokens %d, spans %v", bt.LossTokens(), bt.Spans)
	}
}

func TestPack(t *testing.T) {
	a := sample([]int32{1, 5, 6, 2}, false, true, true, true)
	b := sample([]int32{1, 7, 2}, false, true, true)
	c := sample([]int32{1, 8}, false, true)
	bt := Pack([]Sample{a, b, c}, 6, 0)
	// a fills row 0 (4 tokens), b does not fit next to it, c does.
	if bt.B != 2 || bt.T != 6 {
		t.Fatalf("B=%d T=%d", bt.B, bt.T)
	}
	const x = IgnoreIndex
	wantIDs := []int32{1, 5, 6, 2, 1, 8, 1, 7, 2, 0, 0, 0}
	wantPos := []int32{0, 1, 2, 3, 0, 1, 0, 1, 2, 3, 4, 5}
	wantSeg := []int32{0, 0, 0, 0, 2, 2, 1, 1, 1, -1, -1, -1}
	wantTgt := []int32{5, 6, 2, x, 8, x, 7, 2, x, x, x, x}
	for name, pair := range map[string][2][]int32{"ids": {bt.IDs, wantIDs}, "pos": {bt.Pos, wantPos}, "seg": {bt.Seg, wantSeg}, "targets": {bt.Targets, wantTgt}} {
		if !slices.Equal(pair[0], pair[1]) {
			t.Errorf("%s %v, want %v", name, pair[0], pair[1])
		}
	}
	if want := []Span{{0, 0, 4}, {1, 0, 3}, {0, 4, 2}}; !slices.Equal(bt.Spans, want) {
		t.Errorf("spans %v, want %v", bt.Spans, want)
	}
}

func TestPackAligned(t *testing.T) {
	ids := func(n int) Sample { return Sample{IDs: make([]int32, n), Loss: make([]bool, n)} }
	samples := []Sample{ids(5), ids(12), ids(3), ids(4), ids(2)}
	bt := PackAligned(samples, 12, 4, 0)
	// 5 → row 0 [0, 5); 12 → row 1; 3 → row 0 at 8 (aligned up from 5);
	// 4 → row 0 would start at 12: row 2; 2 → row 2 at 4.
	want := []Span{{0, 0, 5}, {1, 0, 12}, {0, 8, 3}, {2, 0, 4}, {2, 4, 2}}
	if bt.B != 3 || bt.T != 12 || !slices.Equal(bt.Spans, want) {
		t.Fatalf("B=%d T=%d spans %v, want %v", bt.B, bt.T, bt.Spans, want)
	}
	if got := bt.Seg[5:8]; !slices.Equal(got, []int32{-1, -1, -1}) {
		t.Fatalf("the gap before an aligned sample holds segments %v, want padding", got)
	}
	for _, rowLen := range []int{12, 15, 30} {
		a, b := Pack(samples, rowLen, 7), PackAligned(samples, rowLen, 1, 7)
		if !slices.Equal(a.Spans, b.Spans) || !slices.Equal(a.IDs, b.IDs) || !slices.Equal(a.Seg, b.Seg) || !slices.Equal(a.Pos, b.Pos) {
			t.Fatalf("row length %d: PackAligned with alignment 1 differs from Pack", rowLen)
		}
	}
}

func TestSampler(t *testing.T) {
	t.Run("Deterministic", func(t *testing.T) {
		a, b := NewSampler(10, 7, true), NewSampler(10, 7, true)
		for i := 0; i < 6; i++ {
			if x, y := a.Next(3), b.Next(3); !slices.Equal(x, y) {
				t.Fatalf("batch %d: %v vs %v", i, x, y)
			}
		}
	})
	t.Run("EpochIsPermutationDropLast", func(t *testing.T) {
		s := NewSampler(10, 1, true)
		var seen []int
		for i := 0; i < 3; i++ {
			seen = append(seen, s.Next(3)...)
		}
		if c := s.Cursor(); c != (Cursor{0, 9}) {
			t.Fatalf("cursor %+v", c)
		}
		next := s.Next(3) // one left: starts epoch 1
		if c := s.Cursor(); c != (Cursor{1, 3}) {
			t.Fatalf("cursor after the epoch boundary %+v", c)
		}
		slices.Sort(seen)
		if seen = slices.Compact(seen); len(seen) != 9 {
			t.Fatalf("epoch repeated an index: %v", seen)
		}
		first := NewSampler(10, 1, true).Next(3)
		if slices.Equal(next, first) {
			t.Fatalf("epoch 1 starts like epoch 0: %v", next)
		}
	})
	t.Run("SeekResumes", func(t *testing.T) {
		a := NewSampler(17, 3, true)
		for i := 0; i < 7; i++ {
			a.Next(4)
		}
		b := NewSampler(17, 3, true)
		if err := b.Seek(a.Cursor()); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if x, y := a.Next(4), b.Next(4); !slices.Equal(x, y) {
				t.Fatalf("batch %d after seek: %v vs %v", i, x, y)
			}
		}
		if err := b.Seek(Cursor{Epoch: 0, Offset: 99}); err == nil {
			t.Fatal("out-of-range cursor accepted")
		}
	})
	t.Run("SeedMatters", func(t *testing.T) {
		if slices.Equal(NewSampler(50, 1, true).Next(50), NewSampler(50, 2, true).Next(50)) {
			t.Fatal("different seeds gave the same order")
		}
		if got := NewSampler(5, 1, false).Next(5); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
			t.Fatalf("unshuffled order %v", got)
		}
	})
}
