package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// randomUTF8 draws runes from ASCII, Latin, combining marks, CJK, emoji,
// whitespace and the odd special-token marker.
func randomUTF8(rng *rand.Rand) string {
	ranges := [][2]rune{{0x20, 0x7e}, {0x20, 0x7e}, {0x9, 0xd}, {0xa0, 0x24f}, {0x300, 0x36f}, {0x400, 0x4ff},
		{0x900, 0x97f}, {0x1780, 0x17ff}, {0x2000, 0x206f}, {0x3000, 0x30ff}, {0x4e00, 0x9fff}, {0xac00, 0xd7a3},
		{0x1f300, 0x1faff}, {0xe000, 0xe0ff}, {0x10000, 0x10ffff}}
	var sb strings.Builder
	for k := rng.IntN(60); k > 0; k-- {
		if rng.IntN(40) == 0 {
			sb.WriteString([]string{"<|im_end|>", "<|endoftext|>", "<think>", "'s", "\r\n"}[rng.IntN(5)])
			continue
		}
		r := ranges[rng.IntN(len(ranges))]
		c := r[0] + rune(rng.IntN(int(r[1]-r[0]+1)))
		if utf8.ValidRune(c) {
			sb.WriteRune(c)
		}
	}
	return sb.String()
}

// checkRoundTrip asserts Decode(Encode(s)) for the byte-level tokenizers:
// GPT-2 gives s back exactly (as valid UTF-8), Qwen gives NFC(s).
func checkRoundTrip(t *testing.T, s string) {
	t.Helper()
	for _, o := range []EncodeOptions{{}, {ParseSpecial: true}} {
		if got, want := gpt2(t).Decode(gpt2(t).EncodeWith(s, o)), lossyUTF8([]byte(s)); got != want {
			t.Fatalf("gpt2 %+v: Decode(Encode(%q)) = %q", o, s, got)
		}
		if !utf8.ValidString(s) {
			continue
		}
		if got, want := qwen3(t).Decode(qwen3(t).EncodeWith(s, o)), norm.NFC.String(s); got != want {
			t.Fatalf("qwen3 %+v: Decode(Encode(%q)) = %q, want %q", o, s, got, want)
		}
	}
}

func TestHF_RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 500 {
		checkRoundTrip(t, randomUTF8(rng))
	}
	for _, s := range []string{"", " ", "\n\n", "a\xffb", "\xf0\x9f\x98", "e\u0301", "Hello, y'all! 😁"} {
		checkRoundTrip(t, s)
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "Hello world", " \n\t ", "<|im_start|>user\nhi<|im_end|>", "e\u0301\u0327",
		"🚀 (normal) 😶‍🌫️", "333333", "\xff\xfe", "ſ's'S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkRoundTrip(t, s)
	})
}

func TestLossyUTF8(t *testing.T) {
	// Expected outputs follow Rust's String::from_utf8_lossy.
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"\xf0\x9f\x98", "\ufffd"},
		{"\xff\xff", "\ufffd\ufffd"},
		{"\xed\xa0\x80", "\ufffd\ufffd\ufffd"},
		{"\xe0\x80", "\ufffd\ufffd"},
		{"a\xe2\x82b", "a\ufffdb"},
		{"\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"},
	}
	for _, tt := range tests {
		if got := lossyUTF8([]byte(tt.in)); got != tt.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHF_EncodeConcurrent encodes from several goroutines at once: the word
// cache is shared, and results must not depend on interleaving.
func TestHF_EncodeConcurrent(t *testing.T) {
	tok := qwen3(t)
	texts := gsm8kQuestions(t)
	want := make([][]int, len(texts))
	for i, s := range texts {
		want[i] = tok.Encode(s)
	}
	tok.model.cache = wordCache{}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for k := range texts {
				i := (k + g*7) % len(texts)
				if got := tok.Encode(texts[i]); !slices.Equal(got, want[i]) {
					errs <- fmt.Errorf("text %d: got %v, want %v", i, got, want[i])
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
