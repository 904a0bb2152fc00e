package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// detokTexts mix ASCII, accents, CJK and an emoji, so that tok512 falls
// back to byte tokens and byte-level tokenizers split characters.
var detokTexts = []string{
	"Once upon a time, there was a little cat named Tom.",
	"Lily said: \"Café? Ça coûte 3 €.\"\n\nTom: 日本語も話せる 😀 ok",
	"  leading spaces\tand\ttabs\n",
}

// TestDecodeContinuation splits each text's ids at every point and checks
// that the continuation decoded after the first part is exactly the rest
// of the text, for a SentencePiece-style and two byte-level tokenizers;
// the context is longer than DecodeContextTokens at most split points.
func TestDecodeContinuation(t *testing.T) {
	for name, tok := range map[string]Tokenizer{"tok512": tok512(t), "gpt2": gpt2(t), "qwen3": qwen3(t)} {
		for _, text := range detokTexts {
			ids := tok.Encode(text)
			full := tok.Decode(ids)
			for k := 0; k <= len(ids); k++ {
				head := tok.Decode(ids[:k])
				cont := DecodeContinuation(tok, ids[:k], ids[k:])
				// Split inside a character: the head shows it (or, with byte
				// fallback, its whole run of byte tokens) as U+FFFD, and the
				// continuation carries it.
				head = strings.TrimRight(head, "\uFFFD")
				if head+cont != full {
					t.Fatalf("%s %q split at %d: %q + %q, want %q", name, text, k, head, cont, full)
				}
			}
		}
	}
}

// TestDecodeContinuation_LeadingSpace is the case the server got wrong:
// tok512 drops a sequence's leading space, so "upon" decoded alone loses
// the space it has after "Once".
func TestDecodeContinuation_LeadingSpace(t *testing.T) {
	tok := tok512(t)
	ids := tok.Encode("Once upon a time")
	if got := tok.Decode(ids[1:]); got != "upon a time" {
		t.Fatalf("premise: %q decodes alone to %q", "▁upon▁a▁time", got)
	}
	if got := DecodeContinuation(tok, ids[:1], ids[1:]); got != " upon a time" {
		t.Fatalf("continuation after Once = %q, want %q", got, " upon a time")
	}
	if got := DecodeContinuation(tok, nil, ids); got != "Once upon a time" {
		t.Fatalf("no context: %q", got)
	}
	if got := DecodeContinuation(tok, ids, nil); got != "" {
		t.Fatalf("no ids: %q", got)
	}
	// Special tokens in the context are skipped (HF's skip_special_tokens):
	// after BOS alone the text starts the sequence, after BOS "Once" it
	// continues it.
	bos := tok.Specials().BOS
	if got := DecodeContinuation(tok, []int{bos}, ids); got != "Once upon a time" {
		t.Fatalf("after BOS: %q", got)
	}
	if got := DecodeContinuation(tok, []int{bos, ids[0]}, ids[1:]); got != " upon a time" {
		t.Fatalf("after BOS Once: %q", got)
	}
	q := qwen3(t)
	start, _ := q.TokenID("<|im_start|>")
	if got, want := DecodeContinuation(q, []int{start}, q.Encode("Hi there")), "Hi there"; got != want {
		t.Fatalf("qwen3 after <|im_start|>: %q, want %q", got, want)
	}
}

// TestDetokenizer feeds ids one at a time: the pieces add up to the
// continuation decoded in one piece, none splits a character, and Peek
// agrees with Next.
func TestDetokenizer(t *testing.T) {
	for name, tok := range map[string]Tokenizer{"tok512": tok512(t), "gpt2": gpt2(t), "qwen3": qwen3(t)} {
		for _, text := range detokTexts {
			ids := tok.Encode("Prompt: " + text)
			for _, k := range []int{0, 1, 3, len(ids) / 2} {
				d := NewDetokenizer(tok, ids[:k])
				var b strings.Builder
				for _, id := range ids[k:] {
					peek := d.Peek(id)
					piece := d.Next(id)
					if piece != "" && piece != peek {
						t.Fatalf("%s: Peek %q, Next %q", name, peek, piece)
					}
					if !utf8.ValidString(piece) || strings.Contains(piece, "\uFFFD") {
						t.Fatalf("%s %q: piece %q splits a character", name, text, piece)
					}
					b.WriteString(piece)
				}
				if want := DecodeContinuation(tok, ids[:k], ids[k:]); b.String() != want {
					t.Fatalf("%s %q after %d ids: pieces add up to %q, want %q", name, text, k, b.String(), want)
				}
			}
		}
	}
}
