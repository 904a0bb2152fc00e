package data

import (
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// bytesPerToken bounds how much text encodePrefix encodes per token it
// needs before it looks for a cut: far more than any tokenizer's longest
// token, so a text below n·bytesPerToken bytes is always encoded whole.
const bytesPerToken = 64

// encodePrefix returns the first n tokens of tok's encoding of text (all
// of them when there are fewer), without encoding much more of the text
// than n tokens need: one 50 MB dataset field costs what its first few
// thousand tokens cost, not gigabytes. A text shorter than
// n·bytesPerToken bytes is encoded whole, as before. A longer one is cut
// after a white-space run at about k bytes and again at about 2k: when
// both encodings have n tokens and agree on them, the cut changed none of
// them and they are returned; otherwise k grows, up to the whole text.
func encodePrefix(tok tokenizer.Tokenizer, text string, opts tokenizer.EncodeOptions, n int) []int {
	if n <= 0 {
		return tok.EncodeWith(text, opts)
	}
	for k := n * bytesPerToken; k < len(text); k *= 4 {
		a, b := cutAfter(text, k), cutAfter(text, 2*k)
		if b >= len(text) {
			break
		}
		ta := tok.EncodeWith(text[:a], opts)
		if len(ta) < n {
			continue
		}
		if tb := tok.EncodeWith(text[:b], opts); len(tb) >= n && slices.Equal(ta[:n], tb[:n]) {
			return ta[:n]
		}
	}
	ids := tok.EncodeWith(text, opts)
	return ids[:min(n, len(ids))]
}

// cutAfter returns a byte offset at or after at where text can be cut:
// just before the first white space that follows a non-space (so no word
// and no white-space run is split), else the next rune boundary; len(text)
// when at reaches the end.
func cutAfter(text string, at int) int {
	if at >= len(text) {
		return len(text)
	}
	for i := at; i < len(text) && i < at+4096; {
		r, size := utf8.DecodeRuneInString(text[i:])
		if unicode.IsSpace(r) {
			prev, _ := utf8.DecodeLastRuneInString(text[:i])
			if !unicode.IsSpace(prev) {
				return i
			}
		}
		i += size
	}
	for at < len(text) && !utf8.RuneStart(text[at]) {
		at++
	}
	return at
}
