package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// The Llama 2 style pipeline the export writes: the normalizer adds the
// dummy prefix and turns spaces into "▁"; there is no pre-tokenizer, so
// merges may cross words exactly as run.c's loop does.
const (
	llamaNormalizerJSON = `{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}`
	llamaDecoderJSON    = `{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}`
)

// HFJSON writes the vocabulary as a Hugging Face tokenizer.json: a
// SentencePiece-style BPE with byte_fallback whose merges are derived from
// the scores, so that HF tokenizers (and Load) give run.c's ids.
//
// Why the ids agree: run.c merges the adjacent pair whose concatenation
// scores best, leftmost first; BPE merges the pair of lowest rank, leftmost
// first. Every split (a, b) of every token t becomes a merge, and merges are
// ranked by t's score (best first), so the two agree except on ties: run.c
// breaks them by position, BPE by rank. Ties happen when two tokens share a
// score, or when a token t has several splits pending at once. The export
// fails on the first; for the second it checks that the splits cannot
// overlap ([a, b, c] with a+b == b+c) and that no merge that beats t can
// follow from merging one copy of t first (see checkSplitOrder). It fails
// rather than write a tokenizer that disagrees. The one difference left is documented on Llama2C: text holding
// "▁" (U+2581) itself, which the normalizer cannot tell from a space.
func (t *Llama2C) HFJSON() ([]byte, error) {
	names := make([]string, len(t.pieces))
	seen := make(map[string]int, len(t.pieces))
	for id := range t.pieces {
		n := hfSpelling(t.names[id])
		if !utf8.ValidString(n) {
			return nil, fmt.Errorf("llama2c export: token %d %q is not valid UTF-8", id, n)
		}
		if other, dup := seen[n]; dup {
			return nil, fmt.Errorf("llama2c export: tokens %d and %d are both %q", other, id, n)
		}
		seen[n] = id
		names[id] = n
	}
	merges, err := t.derivedMerges(names)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"version":"1.0","truncation":null,"padding":null,"added_tokens":[`)
	t.writeAdded(&b)
	b.WriteString(`],"normalizer":` + llamaNormalizerJSON + `,"pre_tokenizer":null,"post_processor":`)
	t.writePost(&b)
	b.WriteString(`,"decoder":` + llamaDecoderJSON)
	b.WriteString(`,"model":{"type":"BPE","dropout":null,"unk_token":`)
	if t.specials.UNK >= 0 {
		b.WriteString(jsonString(names[t.specials.UNK]))
	} else {
		b.WriteString("null")
	}
	b.WriteString(`,"continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":true,"byte_fallback":true,"ignore_merges":false,"vocab":{`)
	for id, n := range names {
		if id > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "\n%s:%d", jsonString(n), id)
	}
	b.WriteString("\n},\"merges\":[")
	for i, m := range merges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n" + jsonString(m[0]+" "+m[1]))
	}
	b.WriteString("\n]}}\n")
	return b.Bytes(), nil
}

// derivedMerges lists (left, right) for every way to split every token into
// two tokens, best-scoring result first. Specials take no part: their
// names differ from the pieces run.c concatenates.
func (t *Llama2C) derivedMerges(names []string) ([][2]string, error) {
	type cand struct{ a, b, c int }
	var cands []cand
	for key, c := range t.pairs {
		a, b := int(key>>32), int(uint32(key))
		if t.isSpecial(a) || t.isSpecial(b) || t.isSpecial(int(c)) {
			continue
		}
		cands = append(cands, cand{a, b, int(c)})
	}
	sort.Slice(cands, func(i, j int) bool {
		x, y := cands[i], cands[j]
		if sx, sy := t.scores[x.c], t.scores[y.c]; sx != sy {
			return sx > sy
		}
		if x.c != y.c {
			return x.c < y.c
		}
		return len(t.pieces[x.a]) < len(t.pieces[y.a])
	})
	for i := 0; i < len(cands); {
		j := i
		for j < len(cands) && cands[j].c == cands[i].c {
			j++
		}
		for x := i; x < j; x++ {
			for y := i; y < j; y++ {
				if x != y && cands[x].b == cands[y].a {
					return nil, fmt.Errorf("llama2c export: token %d has overlapping splits; run.c and BPE could merge them differently", cands[i].c)
				}
			}
		}
		if j-i > 1 {
			var splits [][2]int
			for _, x := range cands[i:j] {
				splits = append(splits, [2]int{x.a, x.b})
			}
			if err := t.checkSplitOrder(cands[i].c, splits); err != nil {
				return nil, err
			}
		}
		if j < len(cands) && t.scores[cands[j].c] == t.scores[cands[i].c] {
			return nil, fmt.Errorf("llama2c export: tokens %d and %d have the same score %v; run.c breaks that tie by position, BPE ranks cannot", cands[i].c, cands[j].c, t.scores[cands[i].c])
		}
		i = j
	}
	out := make([][2]string, len(cands))
	for i, c := range cands {
		if strings.Contains(names[c.a], " ") || strings.Contains(names[c.b], " ") {
			return nil, fmt.Errorf("llama2c export: token %d or %d holds a space, which a \"left right\" merge cannot spell", c.a, c.b)
		}
		out[i] = [2]string{names[c.a], names[c.b]}
	}
	return out, nil
}

// checkSplitOrder guards the one place where BPE ranks and run.c's scores
// could disagree: token c has several splits, and while several copies of c
// are pending run.c merges them leftmost first, BPE in rank order. The order
// is irrelevant unless merging one copy creates a pair (z, c) or (c, z) that
// beats c and takes a symbol another copy needed. While c's merges are the
// best pending ones, z can only sit next to a split's outer symbol if z does
// not merge with that symbol better than c; so a token u built from c that
// outscores c is harmless when, for every split (a, b) of c, z+a (for
// u = z+c) or b+z (for u = c+z) is a token scoring above c.
func (t *Llama2C) checkSplitOrder(c int, splits [][2]int) error {
	sc := t.scores[c]
	for key, u := range t.pairs {
		a, b := int(key>>32), int(uint32(key))
		if t.scores[u] < sc || (a != c && b != c) {
			continue
		}
		for _, sp := range splits {
			if (b == c && !t.mergesAbove(a, sp[0], sc)) || (a == c && !t.mergesAbove(sp[1], b, sc)) {
				return fmt.Errorf("llama2c export: token %d has several splits and token %d, built from it, scores higher; run.c and BPE could merge in different orders", c, u)
			}
		}
	}
	return nil
}

// mergesAbove reports whether the pair (x, y) merges into a token scoring
// above score.
func (t *Llama2C) mergesAbove(x, y int, score float32) bool {
	id, ok := t.pairs[pairKey(int32(x), int32(y))]
	return ok && t.scores[id] > score
}

func (t *Llama2C) isSpecial(id int) bool {
	return id == t.specials.UNK || id == t.specials.BOS || id == t.specials.EOS
}

// writeAdded writes the control tokens as special added tokens, so they are
// never split and ParseSpecial can find them.
func (t *Llama2C) writeAdded(b *bytes.Buffer) {
	first := true
	for _, id := range []int{t.specials.UNK, t.specials.BOS, t.specials.EOS} {
		if id < 0 {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(b, `{"id":%d,"content":%s,"single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}`,
			id, jsonString(t.names[id]))
	}
}

// writePost writes Llama 2's post-processor (BOS before the text), which is
// what makes HF's add_special_tokens=True add BOS; gorlhf's Encode never does.
func (t *Llama2C) writePost(b *bytes.Buffer) {
	if t.specials.BOS < 0 {
		b.WriteString("null")
		return
	}
	bos := jsonString(t.names[t.specials.BOS])
	fmt.Fprintf(b, `{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":%s,"type_id":0}},{"Sequence":{"id":"A","type_id":0}}],`+
		`"pair":[{"SpecialToken":{"id":%s,"type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":%s,"type_id":1}},{"Sequence":{"id":"B","type_id":1}}],`+
		`"special_tokens":{%s:{"id":%s,"ids":[%d],"tokens":[%s]}}}`, bos, bos, bos, bos, bos, t.specials.BOS, bos)
}

// jsonString quotes s for JSON without HTML escaping, so "<s>" stays
// readable.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic("tokenizer: json encode of a string: " + err.Error()) // cannot fail for a string
	}
	return strings.TrimSuffix(b.String(), "\n")
}
