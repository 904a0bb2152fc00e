package tokenizer

import (
	"fmt"
	"slices"
	"testing"
)

// TestHF_EncodeGolden checks every string of the llama.cpp tokenizer test
// set against the ids HF tokenizers produced.
func TestHF_EncodeGolden(t *testing.T) {
	for _, tc := range []struct {
		key  string
		load func(testing.TB) *HF
	}{
		{"gpt2", gpt2},
		{"qwen2", qwen3},
	} {
		t.Run(tc.key, func(t *testing.T) {
			tok := tc.load(t)
			for i, c := range golden(t, tc.key) {
				got := tok.Encode(c.Text)
				if !slices.Equal(got, c.IDs) {
					t.Errorf("case %d %q:\n got %v\nwant %v", i, c.Text, got, c.IDs)
				}
			}
		})
	}
}

// TestHF_EncodeGoldenLlama3 documents that no Llama 3 tokenizer.json ships
// with the assets, so the "llama3" golden ids cannot be checked here.
func TestHF_EncodeGoldenLlama3(t *testing.T) {
	t.Skip(fmt.Sprintf("no Llama 3 tokenizer.json available; %d golden cases unchecked", len(golden(t, "llama3"))))
}
