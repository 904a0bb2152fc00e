package generate

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

var tinyShape = model.KVShape{Layers: 2, KVHeads: 2, HeadDim: 4, Heads: 4}

// TestPagedCache_Blocks covers block accounting: allocation as sequences
// grow, sharing with reference counts, copy-on-write of a shared partial
// block, release to the free list and ErrCacheFull.
func TestPagedCache_Blocks(t *testing.T) {
	c, err := NewPagedCache(tinyShape, 4, 6)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("reserve_grows_table", func(t *testing.T) {
		if err := c.Reserve(0, 0, 6); err != nil { // positions 0–5: 2 blocks
			t.Fatal(err)
		}
		if got := c.UsedBlocks(); got != 2 {
			t.Fatalf("used %d blocks, want 2", got)
		}
		if got := c.Needed(0, 6, 1); got != 0 {
			t.Fatalf("position 6 fits the second block, Needed = %d", got)
		}
	})
	t.Run("share_counts_refs", func(t *testing.T) {
		c.Share(0, 1, 2)
		c.Share(0, 2, 2)
		if got := c.UsedBlocks(); got != 2 {
			t.Fatalf("sharing took blocks: used %d", got)
		}
		b := c.table(0)[1]
		if c.refs[b] != 3 {
			t.Fatalf("shared block refs %d, want 3", c.refs[b])
		}
	})
	t.Run("copy_on_write", func(t *testing.T) {
		for l := range c.k { // mark every block's contents
			for _, a := range append(c.k[l].arenas, c.v[l].arenas...) {
				for i := range a {
					a[i] = float32(i%977) - 300
				}
			}
		}
		shared := c.table(1)[1]
		if got := c.Needed(1, 6, 1); got != 1 {
			t.Fatalf("writing into a shared block needs a copy: Needed = %d", got)
		}
		if err := c.Reserve(1, 6, 1); err != nil {
			t.Fatal(err)
		}
		priv := c.table(1)[1]
		if priv == shared || c.refs[shared] != 2 || c.refs[priv] != 1 {
			t.Fatalf("after CoW: table %v, refs shared %d private %d", c.table(1), c.refs[shared], c.refs[priv])
		}
		for l := range c.k {
			if !slices.Equal(c.k[l].block(priv), c.k[l].block(shared)) || !slices.Equal(c.v[l].block(priv), c.v[l].block(shared)) {
				t.Fatalf("layer %d: the copy differs from the shared block", l)
			}
		}
		if c.table(1)[0] != c.table(0)[0] {
			t.Fatal("the full first block must stay shared")
		}
	})
	t.Run("full", func(t *testing.T) {
		free := c.FreeBlocks() // 3
		err := c.Reserve(3, 0, 4*(free+1))
		if !errors.Is(err, ErrCacheFull) {
			t.Fatalf("Reserve beyond the free list: %v, want ErrCacheFull", err)
		}
		if c.FreeBlocks() != free {
			t.Fatal("a failed Reserve must take nothing")
		}
	})
	t.Run("release", func(t *testing.T) {
		for id := 0; id < 3; id++ {
			c.Release(id)
		}
		if c.UsedBlocks() != 0 || c.FreeBlocks() != 6 {
			t.Fatalf("after releasing everything: used %d free %d", c.UsedBlocks(), c.FreeBlocks())
		}
		if c.PeakUsedBlocks() != 3 {
			t.Fatalf("peak %d, want 3", c.PeakUsedBlocks())
		}
	})
}

// TestPagedCache_Attend checks paged attention against the flat reference
// cache through whole model steps: a GQA Llama and GPT-2, block sizes that
// do and do not divide the lengths, ragged chunks, and sequences sharing
// prompt blocks and diverging (copy-on-write) before decoding.
func TestPagedCache_Attend(t *testing.T) {
	lm, err := llama.New(llama.Config{VocabSize: 40, Hidden: 32, Intermediate: 40, Layers: 2, Heads: 4, KVHeads: 2, RMSNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	lm.Init(tt.Rand(1))
	g2, err := gpt2.New(gpt2.Config{VocabSize: 40, MaxPositions: 64, Hidden: 32, Layers: 2, Heads: 2, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	g2.Init(tt.Rand(2))
	for name, m := range map[string]model.Decoder{"llama_gqa": lm, "gpt2": g2} {
		for _, bs := range []int{1, 3, 16} {
			t.Run(fmt.Sprintf("%s/block%d", name, bs), func(t *testing.T) { comparePagedFlat(t, m, bs) })
		}
	}
}

func comparePagedFlat(t *testing.T, m model.Decoder, bs int) {
	paged, err := NewPagedCache(m.KVShape(), bs, 64)
	if err != nil {
		t.Fatal(err)
	}
	flat := model.NewFlatCache(m.KVShape())
	r := tt.Rand(uint64(bs))
	prompt := make([]int32, 11)
	for i := range prompt {
		prompt[i] = int32(r.IntN(40))
	}
	run := func(b *model.Batch) []float32 {
		t.Helper()
		for _, sp := range b.Seqs {
			if err := paged.Reserve(sp.ID, sp.Start, sp.Len); err != nil {
				t.Fatal(err)
			}
		}
		return m.Step(b, paged).Data
	}
	check := func(got, want []float32, what string) {
		t.Helper()
		if e := tt.MaxRelErr(got, want, 1); e > 1e-5 {
			t.Fatalf("block size %d, %s: paged logits differ from the flat cache by %.3g", bs, what, e)
		}
	}
	// Paged: the prompt in two chunks as sequence 0, then shared by
	// samples 1 and 2. Flat: each sample prefills its own copy.
	run(&model.Batch{Tokens: prompt[:5], Seqs: []model.SeqSpan{{ID: 0, Len: 5}}, Logits: []int{4}})
	got := run(&model.Batch{Tokens: prompt[5:], Seqs: []model.SeqSpan{{ID: 0, Start: 5, Len: 6}}, Logits: []int{5}})
	want := m.Step(&model.Batch{Tokens: append(append([]int32(nil), prompt...), prompt...),
		Seqs: []model.SeqSpan{{ID: 1, Len: 11}, {ID: 2, Len: 11}}, Logits: []int{10}}, flat).Data
	check(got, want, "prefill")
	for id := 1; id <= 2; id++ {
		paged.Share(0, id, paged.blocksFor(11))
	}
	paged.Release(0)
	for p := 11; p < 20; p++ {
		b := &model.Batch{Tokens: []int32{int32(r.IntN(40)), int32(r.IntN(40))},
			Seqs: []model.SeqSpan{{ID: 1, Start: p, Len: 1}, {ID: 2, Start: p, Len: 1}}, Logits: []int{0, 1}}
		check(run(b), m.Step(b, flat).Data, "decode after sharing")
	}
	paged.Release(1)
	paged.Release(2)
	if paged.UsedBlocks() != 0 {
		t.Fatalf("%d blocks leaked", paged.UsedBlocks())
	}
}
