package tokenizer

import (
	"slices"
	"testing"
)

// TestEncodeContinuation checks, for a SentencePiece-style tokenizer and
// two byte-level ones, that a continuation's ids decode to exactly its text
// when appended to a prefix's ids, and that they equal the tail of encoding
// prefix+text in one piece where the tokenizer splits at the boundary.
func TestEncodeContinuation(t *testing.T) {
	toks := map[string]Tokenizer{"tok512": tok512(t), "gpt2": gpt2(t), "qwen3": qwen3(t)}
	cases := []struct{ prefix, text string }{
		{"Q1: What is 3 * 4?\nA: 12", "\nCorrect.\nQ2: Add 5 to the previous answer.\nA: "},
		{"23+4=27", "\n27+5="},
		{"Once upon a time", " there was a cat."},
		{"Hello", "\n\nWorld"},
		{"x", "27"},
	}
	for name, tok := range toks {
		for _, c := range cases {
			pre := tok.Encode(c.prefix)
			cont := EncodeContinuation(tok, c.text, EncodeOptions{})
			if got := tok.Decode(append(slices.Clone(pre), cont...)); got != c.prefix+c.text {
				t.Errorf("%s: decode(encode(%q) + continuation(%q)) = %q", name, c.prefix, c.text, got)
			}
			if got := tok.Decode(cont); name != "tok512" && got != c.text {
				t.Errorf("%s: continuation %q decodes alone to %q", name, c.text, got)
			}
		}
	}
	// tok512 (llama2.c): Encode adds the dummy "▁"; a continuation must not.
	tok := tok512(t)
	plain, cont := tok.Encode("27"), EncodeContinuation(tok, "27", EncodeOptions{})
	if len(plain) != len(cont)+1 || !slices.Equal(plain[1:], cont) {
		t.Fatalf("tok512: Encode(27) = %v, continuation = %v; want the same without the dummy prefix", plain, cont)
	}
	if ids := EncodeContinuation(tok, "", EncodeOptions{}); ids != nil {
		t.Fatalf("empty continuation = %v", ids)
	}
}
