package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// hfRef is testdata/hf_ref.json, written by tools/tokenizer_hf_ref.py: an
// independent Python implementation run over real text (GSM8K, hh-rlhf,
// UCI sentiment), special-token cases and seeded random strings.
type hfRef struct {
	Texts []string `json:"texts"`
	IDs   map[string]struct {
		Plain   [][]int `json:"plain"`
		Special [][]int `json:"special"`
	} `json:"ids"`
}

func TestHF_EncodeReference(t *testing.T) {
	b, err := os.ReadFile("testdata/hf_ref.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref hfRef
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		load func(testing.TB) *HF
	}{
		{"gpt2", gpt2},
		{"qwen3", qwen3},
	} {
		want, ok := ref.IDs[tc.key]
		if !ok || len(want.Plain) != len(ref.Texts) || len(want.Special) != len(ref.Texts) {
			t.Fatalf("hf_ref.json: key %q missing or incomplete", tc.key)
		}
		t.Run(tc.key, func(t *testing.T) {
			tok := tc.load(t)
			for i, text := range ref.Texts {
				if got := tok.Encode(text); !slices.Equal(got, want.Plain[i]) {
					t.Errorf("text %d %q:\n got %v\nwant %v", i, text, got, want.Plain[i])
				}
				got := tok.EncodeWith(text, EncodeOptions{ParseSpecial: true})
				if !slices.Equal(got, want.Special[i]) {
					t.Errorf("text %d %q (ParseSpecial):\n got %v\nwant %v", i, text, got, want.Special[i])
				}
			}
		})
	}
}
