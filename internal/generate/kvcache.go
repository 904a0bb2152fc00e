package generate

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/par"
)

// ErrCacheFull is returned when the KV cache has too few free blocks for
// an allocation.
var ErrCacheFull = errors.New("generate: KV cache full")

// PagedCache is a KV cache cut into fixed-size blocks of BlockSize tokens,
// as in vLLM's PagedAttention (Kwon et al. 2023,
// https://arxiv.org/abs/2309.06180). Each sequence owns a block table (the
// block holding positions [i·BlockSize, (i+1)·BlockSize) is table[i]);
// blocks come from a free list and carry reference counts, so several
// sequences can point at the same prompt blocks (the n samples of one
// prompt). A sequence about to write into a shared block first gets a
// private copy (copy-on-write), so sharing never changes results.
//
// Memory: per layer one K and one V pool. A K block is stored transposed,
// [Hkv, D, BlockSize], and a V block as [Hkv, BlockSize, D]: attention
// then reads both as contiguous row-vector × matrix products (see
// vecMat). Pools grow in arenas of arenaBlocks blocks as blocks are first
// handed out, and the free list hands out the most recently freed block
// first, so memory follows the blocks in use, not the budget.
//
// With EnablePrefixCaching, full blocks also outlive their sequences,
// found by the prefix they hold (prefixcache.go).
//
// Not safe for concurrent use: the engine's scheduler owns it.
type PagedCache struct {
	shape     model.KVShape
	blockSize int
	numBlocks int
	k, v      []pool    // per layer
	refs      []int32   // per block: sequences referencing it (0 = free)
	free      []int32   // stack of free blocks
	tables    [][]int32 // per sequence id: its block table
	peakUsed  int
	rowsOf    *model.Batch // the batch rowsMemo describes (set by Store of layer 0)
	rowsMemo  []attnRow
	prefix    *prefixIndex // nil unless prefix caching is on (prefixcache.go)
}

// NewPagedCache returns a cache of numBlocks blocks of blockSize tokens.
func NewPagedCache(s model.KVShape, blockSize, numBlocks int) (*PagedCache, error) {
	if blockSize < 1 || numBlocks < 1 || s.Layers < 1 || s.KVHeads < 1 || s.HeadDim < 1 {
		return nil, fmt.Errorf("generate: KV cache needs positive sizes, got %d blocks of %d tokens for %+v", numBlocks, blockSize, s)
	}
	c := &PagedCache{shape: s, blockSize: blockSize, numBlocks: numBlocks, refs: make([]int32, numBlocks),
		k: make([]pool, s.Layers), v: make([]pool, s.Layers)}
	per := s.KVHeads * s.HeadDim * blockSize
	for l := range c.k {
		c.k[l].blockFloats, c.v[l].blockFloats = per, per
	}
	for b := numBlocks - 1; b >= 0; b-- {
		c.free = append(c.free, int32(b))
	}
	return c, nil
}

// BlockBytes is the memory of one block over all layers (K and V).
func BlockBytes(s model.KVShape, blockSize int) int {
	return 2 * s.Layers * s.KVHeads * s.HeadDim * blockSize * 4
}

// BlockSize is the number of tokens per block.
func (c *PagedCache) BlockSize() int { return c.blockSize }

// NumBlocks is the total number of blocks.
func (c *PagedCache) NumBlocks() int { return c.numBlocks }

// FreeBlocks is the number of blocks an allocation can take: the free
// list plus, with prefix caching, the idle cached blocks it may evict.
func (c *PagedCache) FreeBlocks() int { return len(c.free) + c.CachedBlocks() }

// UsedBlocks is the number of blocks referenced by at least one sequence.
func (c *PagedCache) UsedBlocks() int { return c.numBlocks - c.FreeBlocks() }

// PeakUsedBlocks is the most blocks ever in use at once.
func (c *PagedCache) PeakUsedBlocks() int { return c.peakUsed }

// blocksFor is the number of blocks that hold n tokens.
func (c *PagedCache) blocksFor(n int) int { return (n + c.blockSize - 1) / c.blockSize }

func (c *PagedCache) table(id int) []int32 {
	if id < len(c.tables) {
		return c.tables[id]
	}
	return nil
}

func (c *PagedCache) setTable(id int, t []int32) {
	for id >= len(c.tables) {
		c.tables = append(c.tables, nil)
	}
	c.tables[id] = t
}

// Needed returns how many free blocks Reserve(id, start, n) would take:
// new blocks past the end of the table plus private copies of shared
// blocks in [start, start+n).
func (c *PagedCache) Needed(id, start, n int) int {
	t := c.table(id)
	need := 0
	for bi := start / c.blockSize; bi < c.blocksFor(start+n); bi++ {
		if bi >= len(t) || c.refs[t[bi]] > 1 {
			need++
		}
	}
	return need
}

// Reserve makes positions [start, start+n) of sequence id writable:
// it appends blocks to the table and replaces shared blocks in the range
// with private copies. It takes nothing and returns ErrCacheFull when
// there are not enough free blocks.
func (c *PagedCache) Reserve(id, start, n int) error {
	if need := c.Needed(id, start, n); need > c.FreeBlocks() {
		return fmt.Errorf("%w: sequence %d needs %d blocks, %d free", ErrCacheFull, id, need, c.FreeBlocks())
	}
	t := c.table(id)
	for bi := start / c.blockSize; bi < c.blocksFor(start+n); bi++ {
		switch {
		case bi >= len(t):
			t = append(t, c.pop())
		case c.refs[t[bi]] > 1:
			nb := c.pop()
			c.copyBlock(nb, t[bi])
			c.refs[t[bi]]--
			t[bi] = nb
		}
	}
	c.setTable(id, t)
	return nil
}

// Share makes dst's table the first nBlocks blocks of src's (each
// reference-counted once more); dst must hold no blocks. The engine uses
// it to give the n samples of a prompt its prefilled blocks.
func (c *PagedCache) Share(src, dst, nBlocks int) {
	if len(c.table(dst)) != 0 {
		panic(fmt.Sprintf("generate: Share into sequence %d that already holds blocks", dst))
	}
	st := c.table(src)[:nBlocks]
	for _, b := range st {
		c.refs[b]++
	}
	c.setTable(dst, append(make([]int32, 0, len(st)+4), st...))
	c.shareKeys(src, dst, nBlocks)
}

// Release drops sequence id's references; blocks no one references go
// back to the free list (with prefix caching, keyed blocks go to the idle
// list instead, where a later prompt can find them).
func (c *PagedCache) Release(id int) {
	t := c.table(id)
	for i := len(t) - 1; i >= 0; i-- {
		b := t[i]
		if c.refs[b]--; c.refs[b] == 0 {
			c.releaseBlock(b)
		}
	}
	if id < len(c.tables) {
		c.tables[id] = t[:0]
	}
	c.clearSeqKeys(id)
}

func (c *PagedCache) pop() int32 {
	var b int32
	if len(c.free) == 0 {
		b = c.evict()
	} else {
		b = c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
	}
	c.refs[b] = 1
	c.peakUsed = max(c.peakUsed, c.UsedBlocks())
	for l := range c.k {
		c.k[l].grow(b)
		c.v[l].grow(b)
	}
	return b
}

func (c *PagedCache) copyBlock(dst, src int32) {
	for l := range c.k {
		copy(c.k[l].block(dst), c.k[l].block(src))
		copy(c.v[l].block(dst), c.v[l].block(src))
	}
}

// arenaBlocks is how many blocks a pool allocates at a time.
const arenaBlocks = 256

// pool holds one layer's K (or V) blocks in arenas.
type pool struct {
	arenas      [][]float32
	blockFloats int
}

// grow makes sure block b has memory.
func (p *pool) grow(b int32) {
	for int(b)/arenaBlocks >= len(p.arenas) {
		p.arenas = append(p.arenas, make([]float32, arenaBlocks*p.blockFloats))
	}
}

// block returns block b's floats.
func (p *pool) block(b int32) []float32 {
	o := int(b) % arenaBlocks * p.blockFloats
	return p.arenas[int(b)/arenaBlocks][o : o+p.blockFloats]
}

// Store implements model.KVCache. The positions written must have been
// reserved. Rows go to distinct (private) blocks, so they are written in
// parallel.
func (c *PagedCache) Store(layer int, b *model.Batch, k, v []float32) {
	hkv, d, bs := c.shape.KVHeads, c.shape.HeadDim, c.blockSize
	kd := hkv * d
	kp, vp := &c.k[layer], &c.v[layer]
	if layer == 0 {
		c.rowsOf = nil // a new step: the batch may reuse an old one's address
	}
	rows := c.rows(b)
	par.For(len(rows), 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := rows[i]
			blk, off := r.table[r.pos/bs], r.pos%bs
			if c.refs[blk] != 1 {
				panic(fmt.Sprintf("generate: write to shared or free block %d (refs %d) at position %d", blk, c.refs[blk], r.pos))
			}
			kb, vb := kp.block(blk), vp.block(blk)
			for kh := 0; kh < hkv; kh++ {
				src := k[i*kd+kh*d : i*kd+(kh+1)*d]
				base := kh * d * bs
				for x, val := range src { // transposed: [D, BlockSize]
					kb[base+x*bs+off] = val
				}
				copy(vb[base+off*d:base+(off+1)*d], v[i*kd+kh*d:i*kd+(kh+1)*d])
			}
		}
	})
}

// rows lists every batch row's block table and position; it is computed
// once per step (Store of layer 0 starts a step; the batch and the tables
// do not change until the next).
func (c *PagedCache) rows(b *model.Batch) []attnRow {
	if b == c.rowsOf {
		return c.rowsMemo
	}
	rows := c.rowsMemo[:0]
	for _, sp := range b.Seqs {
		t := c.table(sp.ID)
		for i := 0; i < sp.Len; i++ {
			rows = append(rows, attnRow{table: t, pos: sp.Start + i})
		}
	}
	c.rowsOf, c.rowsMemo = b, rows
	return rows
}

var _ model.KVCache = (*PagedCache)(nil)
