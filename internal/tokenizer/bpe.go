package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is HF's BPE model: a word starts as one symbol per character (or per
// byte for byte-level pieces) and adjacent pairs are merged by merge rank,
// lowest first, leftmost first among equal ranks.
type bpe struct {
	vocab        map[string]int
	merges       map[uint64]mergeRule
	unkID        int // -1 when the model has no unk token
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool

	byteIDs     [256]int // id of the byte-level rune of each byte, or -1
	fallbackIDs [256]int // id of "<0xNN>", or -1

	cache wordCache
}

// mergeRule is the outcome of merging one pair.
type mergeRule struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// newBPE indexes the vocabulary; merges are (left, right) token strings in
// rank order. Errors name the offending merge.
func newBPE(vocab map[string]int, merges [][2]string, field string) (*bpe, error) {
	m := &bpe{vocab: vocab, unkID: -1, merges: make(map[uint64]mergeRule, len(merges))}
	for i, mg := range merges {
		a, okA := vocab[mg[0]]
		b, okB := vocab[mg[1]]
		c, okC := vocab[mg[0]+mg[1]]
		switch {
		case !okA:
			return nil, fmt.Errorf("%s[%d]: token %q not in model.vocab", field, i, mg[0])
		case !okB:
			return nil, fmt.Errorf("%s[%d]: token %q not in model.vocab", field, i, mg[1])
		case !okC:
			return nil, fmt.Errorf("%s[%d]: merged token %q not in model.vocab", field, i, mg[0]+mg[1])
		}
		k := pairKey(int32(a), int32(b))
		if _, dup := m.merges[k]; !dup { // the first (best) rank of a repeated merge wins
			m.merges[k] = mergeRule{rank: int32(i), id: int32(c)}
		}
	}
	for b := 0; b < 256; b++ {
		m.byteIDs[b] = lookupOr(vocab, byteToStr[b], -1)
		m.fallbackIDs[b] = lookupOr(vocab, fmt.Sprintf("<0x%02X>", b), -1)
	}
	return m, nil
}

func lookupOr(m map[string]int, k string, def int) int {
	if v, ok := m[k]; ok {
		return v
	}
	return def
}

// tokenize appends the ids of one pre-token to dst.
func (m *bpe) tokenize(dst []int, p piece) []int {
	if ids, ok := m.cache.get(p.text, p.byteLevel); ok {
		return append(dst, ids...)
	}
	ids := m.tokenizeUncached(p)
	m.cache.put(p.text, p.byteLevel, ids)
	return append(dst, ids...)
}

func (m *bpe) tokenizeUncached(p piece) []int {
	if m.ignoreMerges {
		word := p.text
		if p.byteLevel {
			word = byteLevelString(word)
		}
		if id, ok := m.vocab[word]; ok {
			return []int{id}
		}
	}
	var syms []int32
	if p.byteLevel {
		syms = m.byteSymbols(p.text)
	} else {
		syms = m.charSymbols(p.text)
	}
	syms = m.mergeAll(syms)
	out := make([]int, len(syms))
	for i, s := range syms {
		out[i] = int(s)
	}
	return out
}

// byteSymbols starts a byte-level word: one symbol per byte. A byte whose
// rune is missing from the vocabulary is dropped, as HF does without unk.
func (m *bpe) byteSymbols(raw string) []int32 {
	syms := make([]int32, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if id := m.byteIDs[raw[i]]; id >= 0 {
			syms = append(syms, int32(id))
		} else if m.unkID >= 0 {
			syms = append(syms, int32(m.unkID))
		}
	}
	return syms
}

// charSymbols starts a word from its characters, with byte fallback and
// unk handling as in HF's BPE::merge_word.
func (m *bpe) charSymbols(w string) []int32 {
	syms := make([]int32, 0, len(w))
	pendingUnk := false
	for i := 0; i < len(w); {
		_, n := utf8.DecodeRuneInString(w[i:])
		ch := w[i : i+n]
		i += n
		if id, ok := m.vocab[ch]; ok {
			if pendingUnk {
				syms = append(syms, int32(m.unkID))
				pendingUnk = false
			}
			syms = append(syms, int32(id))
			continue
		}
		if m.byteFallback && m.appendFallback(&syms, ch) {
			continue
		}
		if m.unkID < 0 {
			continue // HF drops the character when there is no unk token
		}
		if pendingUnk && !m.fuseUnk {
			syms = append(syms, int32(m.unkID))
		}
		pendingUnk = true
	}
	if pendingUnk {
		syms = append(syms, int32(m.unkID))
	}
	return syms
}

// appendFallback appends the <0xNN> tokens of ch if all exist.
func (m *bpe) appendFallback(syms *[]int32, ch string) bool {
	for i := 0; i < len(ch); i++ {
		if m.fallbackIDs[ch[i]] < 0 {
			return false
		}
	}
	for i := 0; i < len(ch); i++ {
		*syms = append(*syms, int32(m.fallbackIDs[ch[i]]))
	}
	return true
}

// mergeAll applies merges in rank order using a heap of candidate pairs and
// a linked list of symbols, so long words cost O(n log n).
func (m *bpe) mergeAll(syms []int32) []int32 {
	n := len(syms)
	if n < 2 {
		return syms
	}
	next := make([]int32, n)
	prev := make([]int32, n)
	for i := range syms {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	next[n-1] = -1
	q := make(pairHeap, 0, n)
	push := func(pos int32) {
		nx := next[pos]
		if nx < 0 {
			return
		}
		if r, ok := m.merges[pairKey(syms[pos], syms[nx])]; ok {
			q.push(pairCand{rank: r.rank, pos: pos, left: syms[pos], right: syms[nx]})
		}
	}
	for i := int32(0); i < int32(n-1); i++ {
		push(i)
	}
	for len(q) > 0 {
		c := q.pop()
		nx := next[c.pos]
		if syms[c.pos] != c.left || nx < 0 || syms[nx] != c.right {
			continue // stale: one side was merged since this was queued
		}
		syms[c.pos] = m.merges[pairKey(c.left, c.right)].id
		syms[nx] = -1
		next[c.pos] = next[nx]
		if nn := next[nx]; nn >= 0 {
			prev[nn] = c.pos
		}
		if p := prev[c.pos]; p >= 0 {
			push(p)
		}
		push(c.pos)
	}
	out := syms[:0]
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, syms[i])
	}
	return out
}

// pairCand is a queued merge: the pair starting at symbol pos, with the ids
// it had when queued.
type pairCand struct {
	rank, pos   int32
	left, right int32
}

// pairHeap is a min-heap on (rank, pos): HF's order for applying merges.
// It is hand-rolled to avoid container/heap's boxing in this hot loop.
type pairHeap []pairCand

func (h pairHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *pairHeap) push(c pairCand) {
	*h = append(*h, c)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *pairHeap) pop() pairCand {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q) && q.less(l, m) {
			m = l
		}
		if r < len(q) && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}

// wordCache remembers the ids of recent pre-tokens: natural text repeats
// words, and a map lookup is far cheaper than merging. When full it is
// cleared rather than evicted piecemeal, which keeps it simple and bounded.
type wordCache struct {
	mu    sync.RWMutex
	words [2]map[string][]int // [0] for text pieces, [1] for byte-level pieces
}

const wordCacheMax = 1 << 16

// maxCachedWord keeps pathological long pre-tokens out of the cache.
const maxCachedWord = 256

func (c *wordCache) get(w string, byteLevel bool) ([]int, bool) {
	c.mu.RLock()
	ids, ok := c.words[b2i(byteLevel)][w]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(w string, byteLevel bool, ids []int) {
	if len(w) > maxCachedWord {
		return
	}
	k := b2i(byteLevel)
	c.mu.Lock()
	if c.words[k] == nil || len(c.words[k]) >= wordCacheMax {
		c.words[k] = make(map[string][]int)
	}
	c.words[k][strings.Clone(w)] = ids // w may point into a large input
	c.mu.Unlock()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
