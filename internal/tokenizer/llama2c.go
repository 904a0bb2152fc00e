package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Llama2C is a llama2.c tokenizer file (for example stories260K's
// tok512.bin): int32 max_token_length, then per token a float32 score, an
// int32 byte length and the bytes. Encoding follows llama2.c run.c: a dummy
// " " token before non-empty text (SentencePiece's add_dummy_prefix), one
// token per UTF-8 character with byte fallback to id byte+3, then the
// adjacent pair whose concatenation has the best score is merged first.
//
// HFJSON exports the same vocabulary as a tokenizer.json that encodes to the
// same ids, with one unavoidable exception: a literal "▁" (U+2581) in the
// text. The file stores spaces as ' ', so run.c sees "▁" as an unknown
// character (three byte tokens), while a SentencePiece-style tokenizer.json
// spells spaces as "▁" and so reads a literal "▁" as a space. Real Llama 2
// tokenizers behave like the export.
type Llama2C struct {
	maxLen   int
	pieces   []string       // as stored: spaces are ' ', BOS is "\n<s>\n"
	scores   []float32      // per id
	lookup   map[string]int // piece -> id (lowest id on duplicates)
	names    []string       // Token(id): pieces, with specials as "<s>" etc.
	nameToID map[string]int
	pairs    map[uint64]int32 // (left, right) -> id of their concatenation
	spaceID  int              // the dummy-prefix token " ", or -1
	specials Specials
	added    *addedMatcher // "<unk>", "<s>", "</s>" for ParseSpecial
	dec      decoder       // same chain as the exported tokenizer.json
}

var _ Tokenizer = (*Llama2C)(nil)

// ParseLlama2C reads a llama2.c tokenizer file. The vocabulary size is not
// stored in the file, so tokens are read until the end of the data.
func ParseLlama2C(data []byte) (*Llama2C, error) {
	if len(data) < 4 {
		return nil, errors.New("llama2c tokenizer: file shorter than its 4-byte header")
	}
	t := &Llama2C{maxLen: int(int32(binary.LittleEndian.Uint32(data))), lookup: map[string]int{}}
	if t.maxLen <= 0 || t.maxLen > 1<<16 {
		return nil, fmt.Errorf("llama2c tokenizer: max_token_length %d out of range", t.maxLen)
	}
	for off := 4; off < len(data); {
		id := len(t.pieces)
		if off+8 > len(data) {
			return nil, fmt.Errorf("llama2c tokenizer: token %d: truncated header at byte %d", id, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if n < 0 || n > len(data)-off {
			return nil, fmt.Errorf("llama2c tokenizer: token %d: length %d runs past the end of the file", id, n)
		}
		p := string(data[off : off+n])
		off += n
		t.pieces = append(t.pieces, p)
		t.scores = append(t.scores, score)
		if _, dup := t.lookup[p]; !dup {
			t.lookup[p] = id
		}
	}
	if err := t.index(); err != nil {
		return nil, err
	}
	return t, nil
}

// index derives names, specials, byte-fallback checks and the pair table.
func (t *Llama2C) index() error {
	if len(t.pieces) < 259 {
		return fmt.Errorf("llama2c tokenizer: %d tokens; byte fallback needs ids 3..258", len(t.pieces))
	}
	for b := 0; b < 256; b++ {
		if want := fmt.Sprintf("<0x%02X>", b); t.pieces[b+3] != want {
			return fmt.Errorf("llama2c tokenizer: token %d is %q, want %q (run.c maps byte b to id b+3)", b+3, t.pieces[b+3], want)
		}
	}
	t.specials = noSpecials()
	t.names = make([]string, len(t.pieces))
	t.nameToID = make(map[string]int, len(t.pieces))
	var added []addedToken
	for id, p := range t.pieces {
		name := specialName(p)
		t.names[id] = name
		if _, dup := t.nameToID[name]; !dup {
			t.nameToID[name] = id
		}
		switch name {
		case "<unk>":
			t.specials.UNK = id
		case "<s>":
			t.specials.BOS = id
		case "</s>":
			t.specials.EOS = id
		default:
			continue
		}
		added = append(added, addedToken{id: id, content: name, special: true})
	}
	t.added = newAddedMatcher(added)
	t.spaceID = lookupOr(t.lookup, " ", -1)
	t.pairs = map[uint64]int32{}
	for id, p := range t.pieces {
		for k := 1; k < len(p); k++ {
			a, okA := t.lookup[p[:k]]
			b, okB := t.lookup[p[k:]]
			if okA && okB && t.lookup[p] == id {
				t.pairs[pairKey(int32(a), int32(b))] = int32(id)
			}
		}
	}
	dec, err := parseDecoder([]byte(llamaDecoderJSON), "decoder")
	if err != nil {
		panic("tokenizer: built-in decoder: " + err.Error()) // programmer error
	}
	t.dec = dec
	return nil
}

// specialName maps llama2.c's spelling of control tokens ("\n<s>\n") to the
// usual one ("<s>"); other pieces are returned unchanged.
func specialName(p string) string {
	if len(p) > 2 && p[0] == '\n' && p[len(p)-1] == '\n' {
		if in := p[1 : len(p)-1]; strings.HasPrefix(in, "<") && strings.HasSuffix(in, ">") {
			return in
		}
	}
	return p
}

// Encode returns run.c's ids for text (no BOS/EOS); "<s>" in the text is
// plain text.
func (t *Llama2C) Encode(text string) []int { return t.EncodeWith(text, EncodeOptions{}) }

// EncodeWith returns the ids of text. With ParseSpecial, "<unk>", "<s>" and
// "</s>" become their ids and the text between them is encoded piece by
// piece, each with its own dummy prefix (what the exported tokenizer.json
// does, and what HF does for Llama 2).
func (t *Llama2C) EncodeWith(text string, o EncodeOptions) []int {
	var ids []int
	for _, seg := range t.added.split(nil, text, o.ParseSpecial) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			continue
		}
		ids = t.encodeText(ids, seg.text)
	}
	return ids
}

// encodeText is run.c's encode() for one stretch of text.
func (t *Llama2C) encodeText(dst []int, text string) []int {
	if text == "" {
		return dst
	}
	syms := make([]int32, 0, len(text)+1)
	if t.spaceID >= 0 {
		syms = append(syms, int32(t.spaceID))
	}
	for i := 0; i < len(text); {
		// A leading byte plus its continuation bytes, at most 4, as run.c.
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := t.lookup[text[i:j]]; ok {
			syms = append(syms, int32(id))
		} else {
			for k := i; k < j; k++ {
				syms = append(syms, int32(text[k])+3)
			}
		}
		i = j
	}
	for _, s := range t.mergeByScore(syms) {
		dst = append(dst, int(s))
	}
	return dst
}

// mergeByScore repeatedly merges the adjacent pair whose concatenation has
// the highest score, the leftmost one on ties, exactly as run.c's loop, but
// with a heap instead of a full rescan per merge.
func (t *Llama2C) mergeByScore(syms []int32) []int32 {
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
	q := make(scoreHeap, 0, n)
	push := func(pos int32) {
		nx := next[pos]
		if nx < 0 {
			return
		}
		if id, ok := t.pairs[pairKey(syms[pos], syms[nx])]; ok {
			q.push(scoreCand{score: t.scores[id], pos: pos, left: syms[pos], right: syms[nx], id: id})
		}
	}
	for i := int32(0); i < int32(n-1); i++ {
		push(i)
	}
	for len(q) > 0 {
		c := q.pop()
		nx := next[c.pos]
		if syms[c.pos] != c.left || nx < 0 || syms[nx] != c.right {
			continue
		}
		syms[c.pos], syms[nx] = c.id, -1
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

type scoreCand struct {
	score            float32
	pos, left, right int32
	id               int32
}

// scoreHeap pops the best score first, then the leftmost position.
type scoreHeap []scoreCand

func (h scoreHeap) better(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score > h[j].score
	}
	return h[i].pos < h[j].pos
}

func (h *scoreHeap) push(c scoreCand) {
	*h = append(*h, c)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.better(i, p) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *scoreHeap) pop() scoreCand {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q) && q.better(l, m) {
			m = l
		}
		if r < len(q) && q.better(r, m) {
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

// Decode returns the text of ids the way the exported tokenizer.json decodes
// them: "<0xNN>" runs become bytes, specials show as "<s>" etc., and one
// leading space (the dummy prefix) is dropped.
func (t *Llama2C) Decode(ids []int) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && id < len(t.names) {
			toks = append(toks, hfSpelling(t.names[id]))
		}
	}
	return strings.Join(t.dec.decodeChain(toks), "")
}

// VocabSize is the number of tokens in the file.
func (t *Llama2C) VocabSize() int { return len(t.pieces) }

// TokenID accepts a piece as stored (" the"), its SentencePiece spelling
// ("▁the") or a special's name ("<s>").
func (t *Llama2C) TokenID(tok string) (int, bool) {
	if id, ok := t.nameToID[tok]; ok {
		return id, true
	}
	id, ok := t.nameToID[strings.ReplaceAll(tok, "\u2581", " ")]
	return id, ok
}

// Token returns the piece of id as stored, with specials named "<s>" etc.
func (t *Llama2C) Token(id int) string {
	if id < 0 || id >= len(t.names) {
		return ""
	}
	return t.names[id]
}

// Score returns the merge score of id (0 when out of range).
func (t *Llama2C) Score(id int) float32 {
	if id < 0 || id >= len(t.scores) {
		return 0
	}
	return t.scores[id]
}

// Specials returns UNK/BOS/EOS as named in the file; PAD is -1.
func (t *Llama2C) Specials() Specials { return t.specials }

// IsSpecial reports whether id is UNK, BOS or EOS (the tokens the HF
// export marks special).
func (t *Llama2C) IsSpecial(id int) bool { return t.isSpecial(id) }

// hfSpelling writes a piece the SentencePiece way, spaces as "▁".
func hfSpelling(p string) string { return strings.ReplaceAll(p, " ", "\u2581") }
