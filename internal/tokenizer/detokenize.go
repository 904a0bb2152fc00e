package tokenizer

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// DecodeContextTokens is how many ids of context DecodeContinuation
// decodes in front of a continuation, at least. Decoders treat only a
// sequence's first token specially (SentencePiece drops its dummy-prefix
// space, WordPiece puts no space before it), so a few ids of context give
// the text the whole sequence would. When those ids begin inside a
// character (their text starts with U+FFFD) more are taken, as
// SentencePiece's byte fallback decodes a run of byte tokens as a whole.
const DecodeContextTokens = 8

// Decoder turns ids into text; every Tokenizer is one.
type Decoder interface {
	Decode(ids []int) string
}

// specialTeller is a Decoder that knows its special tokens (HF, Llama2C).
type specialTeller interface {
	IsSpecial(id int) bool
}

// DecodeContinuation returns the text ids add when they follow context:
// decode(context + ids) less the decoded context in front, the rule of
// Hugging Face's text-generation pipeline and of vLLM's detokenizer.
// Decoding ids alone is wrong for a continuation: a SentencePiece-style
// tokenizer (Llama 2, llama2.c, Mistral) drops the leading space of a
// sequence's first token, so "▁upon" after "Once" decodes to "upon" alone
// but to " upon" here.
//
// Only the end of context is decoded (see DecodeContextTokens), and, as
// with HF's skip_special_tokens, without its special tokens when dec tells
// them (IsSpecial): after a prompt that is only BOS the continuation reads
// as the start of a text. Special tokens among ids are decoded. When
// context ends inside a character that ids complete, the whole character
// belongs to the continuation.
func DecodeContinuation(dec Decoder, context, ids []int) string {
	if len(ids) == 0 {
		return ""
	}
	win, pre := contextWindow(dec, context)
	if len(win) == 0 {
		return dec.Decode(ids)
	}
	full := dec.Decode(append(win, ids...))
	return full[splitAfter(pre, full):]
}

// contextWindow returns the ids of context to decode in front of a
// continuation, and their text: the last DecodeContextTokens that are not
// special, doubled until their text does not start inside a character.
// The slice has room for the continuation to be appended.
func contextWindow(dec Decoder, context []int) ([]int, string) {
	sp, _ := dec.(specialTeller)
	for n := DecodeContextTokens; ; n *= 2 {
		win := make([]int, 0, n+DecodeContextTokens)
		i := len(context) - 1
		for ; i >= 0 && len(win) < n; i-- {
			if sp == nil || !sp.IsSpecial(context[i]) {
				win = append(win, context[i])
			}
		}
		slices.Reverse(win)
		pre := dec.Decode(win)
		if i < 0 || !strings.HasPrefix(pre, "\uFFFD") {
			return win, pre
		}
	}
}

// splitAfter returns where the continuation starts in full, the text of
// context + ids, given pre, the text of the context alone: after pre when
// full starts with it, else after their longest common prefix cut back to
// a character boundary (the context ended inside a character, decoded as
// U+FFFD, that the continuation completes).
func splitAfter(pre, full string) int {
	if strings.HasPrefix(full, pre) {
		return len(pre)
	}
	n := 0
	for n < len(pre) && n < len(full) && pre[n] == full[n] {
		n++
	}
	for n > 0 && n < len(full) && !utf8.RuneStart(full[n]) {
		n--
	}
	return n
}

// Detokenizer turns ids that arrive one at a time into pieces of text, each
// decoded in the context of the ids before it (DecodeContinuation), so the
// pieces add up to the text of all the ids after the context. A piece that
// would end inside a character (U+FFFD: the character's other bytes are
// still to come) is held back and given with the id that completes it, as
// vLLM's incremental detokenizer does. A Detokenizer is not safe for
// concurrent use.
type Detokenizer struct {
	dec  Decoder
	ids  []int // the context, then the ids added
	read int   // ids[:read] are accounted for in the pieces given out
}

// NewDetokenizer starts after context (typically the prompt's ids).
func NewDetokenizer(dec Decoder, context []int) *Detokenizer {
	ids := make([]int, len(context), len(context)+64)
	copy(ids, context)
	return &Detokenizer{dec: dec, ids: ids, read: len(context)}
}

// Next adds id and returns the text it completes: "" while a character is
// incomplete.
func (d *Detokenizer) Next(id int) string {
	d.ids = append(d.ids, id)
	s := DecodeContinuation(d.dec, d.ids[:d.read], d.ids[d.read:])
	if strings.HasSuffix(s, "\uFFFD") {
		return ""
	}
	d.read = len(d.ids)
	return s
}

// Peek returns the text id would add after the ids so far (with any
// held-back bytes in front), without adding it; an incomplete character
// shows as U+FFFD.
func (d *Detokenizer) Peek(id int) string {
	pending := make([]int, 0, len(d.ids)-d.read+1)
	pending = append(append(pending, d.ids[d.read:]...), id)
	return DecodeContinuation(d.dec, d.ids[:d.read], pending)
}
