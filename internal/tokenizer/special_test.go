package tokenizer

import (
	"slices"
	"testing"
)

func TestHF_EncodeSpecial(t *testing.T) {
	tok := qwen3(t)
	const text = "<|im_start|>user\nhi<|im_end|>"
	tests := []struct {
		name string
		o    EncodeOptions
		want []int
	}{
		// 872 "user", 198 "\n", 6023 "hi".
		{"parsed", EncodeOptions{ParseSpecial: true}, []int{151644, 872, 198, 6023, 151645}},
		// "<", "|", "im", "_start", "|", ">" ...: the markers are plain text.
		{"plain", EncodeOptions{}, []int{27, 91, 318, 4906, 91, 29, 872, 198, 6023, 27, 91, 318, 6213, 91, 29}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tok.EncodeWith(text, tt.o)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if d := tok.Decode(got); d != text {
				t.Errorf("Decode = %q, want %q", d, text)
			}
		})
	}
	if got := tok.Encode(text); !slices.Equal(got, tests[1].want) {
		t.Errorf("Encode must equal EncodeWith with zero options: %v", got)
	}
	// Non-special added tokens are matched either way, as in HF.
	if got := tok.Encode("<think>"); !slices.Equal(got, []int{151667}) {
		t.Errorf("Encode(<think>) = %v, want [151667]", got)
	}
}

func TestHF_Specials(t *testing.T) {
	tests := []struct {
		name string
		tok  func(testing.TB) *HF
		want Specials
	}{
		// tokenizer_config.json next to the Qwen3 file: eos <|im_end|>,
		// pad <|endoftext|>, bos null.
		{"qwen3 with config", qwen3, Specials{BOS: -1, EOS: 151645, PAD: 151643, UNK: -1}},
		// GPT-2's file alone: <|endoftext|> by name.
		{"gpt2", gpt2, Specials{BOS: -1, EOS: 50256, PAD: -1, UNK: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok(t).Specials(); got != tt.want {
				t.Errorf("Specials() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHF_TokenID(t *testing.T) {
	q := qwen3(t)
	for tok, want := range map[string]int{"<|im_end|>": 151645, "<|endoftext|>": 151643, "user": 872, "Ċ": 198} {
		if id, ok := q.TokenID(tok); !ok || id != want {
			t.Errorf("TokenID(%q) = %d, %v; want %d", tok, id, ok, want)
		}
		if got := q.Token(want); got != tok {
			t.Errorf("Token(%d) = %q, want %q", want, got, tok)
		}
	}
	if _, ok := q.TokenID("no such token"); ok {
		t.Error("TokenID of an unknown token reported ok")
	}
	if q.Token(-1) != "" || q.Token(1<<30) != "" {
		t.Error("Token of an out-of-range id is not empty")
	}
	if q.VocabSize() != 151669 || gpt2(t).VocabSize() != 50257 {
		t.Errorf("VocabSize = %d, %d; want 151669, 50257", q.VocabSize(), gpt2(t).VocabSize())
	}
	if !q.IsSpecial(151645) || q.IsSpecial(151667) || q.IsSpecial(872) {
		t.Error("IsSpecial: <|im_end|> special, <think> and user not")
	}
}
