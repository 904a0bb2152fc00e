package sft

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/data"
)

// TestConditionalSFT_Steers: conditional SFT end to end on the embedded
// model. Each story opening appears twice, its happy ending scored +1 and
// its sad ending −1 (z-normalised); after training on the reward-conditioned
// prompts, greedy decoding follows the score written into the prompt: the
// high score gives the happy ending, the low one the sad ending.
func TestConditionalSFT_Steers(t *testing.T) {
	openings := [][3]string{
		{"Lily went to the park.", " She was very happy.", " She was very sad."},
		{"Tom ate the cake.", " It was yummy and good.", " It was bad and cold."},
		{"The dog saw Ben.", " The dog was kind.", " The dog was mean."},
		{"Sue got a new toy.", " She loved it.", " She broke it."},
	}
	var b strings.Builder
	for _, o := range openings {
		fmt.Fprintf(&b, "{\"question\": %q, \"answer\": %q, \"score\": 3.5}\n", o[0], o[1])
		fmt.Fprintf(&b, "{\"question\": %q, \"answer\": %q, \"score\": -1.5}\n", o[0], o[2])
	}
	path := filepath.Join(t.TempDir(), "csft.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := testConfig(t, path)
	c.Data.InputTemplate = ""
	c.Reward = data.RewardConditioning{Template: data.DefaultRewardTemplate, RewardKey: "score", Normalize: true}
	c.Train.MicroBatchSize, c.Train.BatchSize, c.Train.MaxEpochs = 4, 8, 40
	c.Train.Optim.LR, c.Train.Optim.WarmupRatio = 3e-3, 0.05
	tr := newTrainer(t, c)
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	enc, err := tr.env.Encoder(c.Data)
	if err != nil {
		t.Fatal(err)
	}
	eos := int32(tr.env.Tok.Specials().EOS)
	// the scores normalise to about ±0.94 (unbiased std); ask for ±1.00
	for _, o := range openings {
		for _, v := range []struct {
			reward float64
			want   string
		}{{1, o[1]}, {-1, o[2]}} {
			// the template's trailing space is left out: in training it
			// merges into the response's first token
			prompt := strings.TrimSpace(c.Reward.Prompt(o[0], v.reward))
			ids := append([]int32{enc.BOS}, toInt32s(enc.Tok.Encode(prompt))...)
			got := tr.env.Tok.Decode(ints(Greedy(tr.model, ids, eos, 16, 64)))
			if !strings.Contains(got, strings.TrimSpace(v.want)) {
				t.Errorf("%q: %q, want %q", prompt, got, v.want)
			}
		}
	}
}

func toInt32s(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
