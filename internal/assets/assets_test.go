package assets

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
)

func TestAssets_Embedded(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		size   int
		sha256 string
	}{
		{"stories260K.bin", Stories260K(), 1056540, "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696"},
		{"tok512.bin", Tok512(), 6227, "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312"},
		{"reference_greedy.json", ReferenceGreedy(), 6803, "7624bcbd9bdfad9ed54d3f76cd90bf3079d4645484f118a3dc02a9e923d0fbcc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.data) != tc.size {
				t.Fatalf("size %d, want %d", len(tc.data), tc.size)
			}
			sum := sha256.Sum256(tc.data)
			if got := hex.EncodeToString(sum[:]); got != tc.sha256 {
				t.Fatalf("sha256 %s, want %s", got, tc.sha256)
			}
		})
	}
}

func TestAssets_ReferenceGreedyParses(t *testing.T) {
	var ref struct {
		PromptIDs  []int     `json:"prompt_ids"`
		GreedyIDs  []int     `json:"greedy_ids"`
		Text       string    `json:"text"`
		Pos0Logits []float32 `json:"pos0_logits"`
	}
	if err := json.Unmarshal(ReferenceGreedy(), &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.PromptIDs) != 1 || ref.PromptIDs[0] != 1 {
		t.Errorf("prompt_ids = %v, want [1]", ref.PromptIDs)
	}
	if len(ref.GreedyIDs) != 200 || len(ref.Pos0Logits) != 512 || ref.Text == "" {
		t.Errorf("got %d ids, %d logits, %d text bytes", len(ref.GreedyIDs), len(ref.Pos0Logits), len(ref.Text))
	}
}
