package generate

import (
	"fmt"
	"slices"
)

// Automatic prefix caching (vLLM's, OpenRLHF's --vllm.enable_prefix_caching):
// a full block, once computed, is registered under a chain key — the hash
// of the previous block's key and the block's own tokens — so the key
// names the whole token prefix up to the block's end. A block nobody
// references any more stays in the cache, idle, on a least-recently-used
// list; a later sequence whose tokens start with the same prefix adopts
// the blocks instead of recomputing them. Idle blocks are free capacity:
// an allocation takes a free block first, then evicts the least recently
// used idle one (deepest first among blocks released together), so
// caching never preempts a running sequence. Invalidate (every weight
// change) forgets every key.
//
// Keys are checked against the block's stored tokens and parent key on
// lookup, so a hash collision can only miss, never return wrong KV.

// prefixIndex is the cache's state for prefix caching; nil when off.
type prefixIndex struct {
	byKey  map[uint64]int32 // chain key → block
	key    []uint64         // per block: its key (valid when keyed)
	parent []uint64         // per block: the previous block's key
	toks   [][]int32        // per block: its tokens (nil: not keyed)
	// LRU list of idle keyed blocks (refs 0): head is evicted first.
	prev, next []int32
	head, tail int32
	idle       int
	seqKeys    [][]uint64 // per sequence id: chain keys of its full blocks
}

const noBlock = -1

// rootKey is the chain key before the first block.
const rootKey uint64 = 0xcbf29ce484222325

// chainKey hashes (parent key, tokens) with FNV-1a over 32-bit tokens.
func chainKey(parent uint64, toks []int32) uint64 {
	const prime = 0x100000001b3
	h := rootKey
	for i := 0; i < 8; i++ {
		h = (h ^ (parent >> (8 * i) & 0xff)) * prime
	}
	for _, t := range toks {
		u := uint32(t)
		for i := 0; i < 4; i++ {
			h = (h ^ uint64(u>>(8*i)&0xff)) * prime
		}
	}
	return h
}

// EnablePrefixCaching turns on prefix caching (before any block is used).
func (c *PagedCache) EnablePrefixCaching() {
	n := c.numBlocks
	p := &prefixIndex{byKey: map[uint64]int32{}, key: make([]uint64, n), parent: make([]uint64, n),
		toks: make([][]int32, n), prev: make([]int32, n), next: make([]int32, n), head: noBlock, tail: noBlock}
	c.prefix = p
}

// PrefixCaching reports whether prefix caching is on.
func (c *PagedCache) PrefixCaching() bool { return c.prefix != nil }

// CachedBlocks is the number of idle blocks kept for their prefix
// (referenced by no sequence; evicted when the free list runs dry).
func (c *PagedCache) CachedBlocks() int {
	if c.prefix == nil {
		return 0
	}
	return c.prefix.idle
}

// Match returns the cached blocks that hold a prefix of toks, in order,
// with their chain keys: whole blocks only, and never the block holding
// the last token (its logits are needed, so at least one token is always
// computed). It changes nothing.
func (c *PagedCache) Match(toks []int32) (blocks []int32, keys []uint64) {
	p := c.prefix
	if p == nil {
		return nil, nil
	}
	bs := c.blockSize
	key := rootKey
	for bi := 0; (bi+1)*bs <= len(toks)-1; bi++ {
		seg := toks[bi*bs : (bi+1)*bs]
		k := chainKey(key, seg)
		b, ok := p.byKey[k]
		if !ok || p.parent[b] != key || !slices.Equal(p.toks[b], seg) {
			break
		}
		blocks, keys = append(blocks, b), append(keys, k)
		key = k
	}
	return blocks, keys
}

// IdleAmong counts the blocks of bs that are idle (adopting them takes
// them out of the free capacity).
func (c *PagedCache) IdleAmong(bs []int32) int {
	n := 0
	for _, b := range bs {
		if c.refs[b] == 0 {
			n++
		}
	}
	return n
}

// Adopt makes blocks (from Match) the start of sequence id's table, which
// must be empty; idle blocks leave the LRU list.
func (c *PagedCache) Adopt(id int, blocks []int32, keys []uint64) {
	if len(c.table(id)) != 0 {
		panic(fmt.Sprintf("generate: Adopt into sequence %d that already holds blocks", id))
	}
	for _, b := range blocks {
		if c.refs[b] == 0 {
			c.unlink(b)
		}
		c.refs[b]++
	}
	c.peakUsed = max(c.peakUsed, c.UsedBlocks())
	c.setTable(id, append(make([]int32, 0, len(blocks)+4), blocks...))
	c.setSeqKeys(id, append([]uint64(nil), keys...))
}

// Commit registers the full blocks of sequence id that hold tokens[:n]
// (its computed tokens) and are not keyed yet. A block whose prefix is
// already cached in another block stays unregistered (and returns to the
// free list when released).
func (c *PagedCache) Commit(id int, toks []int32, n int) {
	p := c.prefix
	if p == nil {
		return
	}
	t := c.table(id)
	keys := c.seqKeys(id)
	bs := c.blockSize
	for bi := len(keys); (bi+1)*bs <= n && bi < len(t); bi++ {
		parent := rootKey
		if bi > 0 {
			parent = keys[bi-1]
		}
		seg := toks[bi*bs : (bi+1)*bs]
		k := chainKey(parent, seg)
		keys = append(keys, k)
		b := t[bi]
		if p.toks[b] != nil {
			continue // adopted or shared: keyed already
		}
		if _, dup := p.byKey[k]; dup {
			continue
		}
		p.byKey[k], p.key[b], p.parent[b], p.toks[b] = b, k, parent, slices.Clone(seg)
	}
	c.setSeqKeys(id, keys)
}

// Invalidate forgets every cached prefix (the weights changed): idle
// blocks go back to the free list and blocks in use lose their keys.
func (c *PagedCache) Invalidate() {
	p := c.prefix
	if p == nil {
		return
	}
	for b := p.head; b != noBlock; b = p.next[b] {
		c.free = append(c.free, b)
	}
	p.head, p.tail, p.idle = noBlock, noBlock, 0
	clear(p.byKey)
	for b := range p.toks {
		p.toks[b] = nil
	}
	for i := range p.seqKeys {
		p.seqKeys[i] = p.seqKeys[i][:0]
	}
}

func (c *PagedCache) seqKeys(id int) []uint64 {
	if id < len(c.prefix.seqKeys) {
		return c.prefix.seqKeys[id]
	}
	return nil
}

func (c *PagedCache) setSeqKeys(id int, k []uint64) {
	p := c.prefix
	if p == nil {
		return
	}
	for id >= len(p.seqKeys) {
		p.seqKeys = append(p.seqKeys, nil)
	}
	p.seqKeys[id] = k
}

// clearSeqKeys forgets sequence id's keys (Release).
func (c *PagedCache) clearSeqKeys(id int) {
	if c.prefix != nil && id < len(c.prefix.seqKeys) {
		c.prefix.seqKeys[id] = c.prefix.seqKeys[id][:0]
	}
}

// shareKeys gives dst the keys of src's first nBlocks blocks (Share).
func (c *PagedCache) shareKeys(src, dst, nBlocks int) {
	if c.prefix == nil {
		return
	}
	k := c.seqKeys(src)
	c.setSeqKeys(dst, slices.Clone(k[:min(len(k), nBlocks)]))
}

// releaseBlock handles a block whose last reference went: a keyed block
// joins the LRU tail (most recently used), any other the free list.
func (c *PagedCache) releaseBlock(b int32) {
	p := c.prefix
	if p == nil || p.toks[b] == nil {
		c.free = append(c.free, b)
		return
	}
	p.prev[b], p.next[b] = p.tail, noBlock
	if p.tail != noBlock {
		p.next[p.tail] = b
	} else {
		p.head = b
	}
	p.tail = b
	p.idle++
}

// unlink takes an idle block off the LRU list.
func (c *PagedCache) unlink(b int32) {
	p := c.prefix
	if p.prev[b] != noBlock {
		p.next[p.prev[b]] = p.next[b]
	} else {
		p.head = p.next[b]
	}
	if p.next[b] != noBlock {
		p.prev[p.next[b]] = p.prev[b]
	} else {
		p.tail = p.prev[b]
	}
	p.idle--
}

// evict forgets the least recently used idle block and returns it.
func (c *PagedCache) evict() int32 {
	p := c.prefix
	b := p.head
	c.unlink(b)
	delete(p.byKey, p.key[b])
	p.toks[b] = nil
	return b
}
