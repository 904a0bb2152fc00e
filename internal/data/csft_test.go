package data

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRewardConditioning_Golden: the conditioned prompts equal OpenRLHF
// v0.8.11's conditional_sft_processor (tools/kto_kd_golden.py), raw and
// z-normalised, "{reward}" replaced before "{input}".
func TestRewardConditioning_Golden(t *testing.T) {
	var g struct {
		Cases []struct {
			Name, Template string
			Normalize      bool
			Inputs, Want   []string
			Rewards        []float64
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", "csft_golden.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with tools/kto_kd_golden.py)", err)
	}
	if err := json.Unmarshal(b, &g); err != nil || len(g.Cases) == 0 {
		t.Fatal(err, len(g.Cases))
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			var lines strings.Builder
			for i, in := range c.Inputs {
				fmt.Fprintf(&lines, "{\"input\": %q, \"output\": \"ok\", \"reward\": %v}\n", in, c.Rewards[i])
			}
			rc := RewardConditioning{Template: c.Template, RewardKey: "reward", Normalize: c.Normalize}
			rep := &Report{Name: "golden"}
			out, err := rc.Apply(records(t, lines.String()), "input", rep)
			if err != nil {
				t.Fatal(err)
			}
			for i, rec := range out {
				var got string
				if err := json.Unmarshal(rec.Fields["input"], &got); err != nil || got != c.Want[i] {
					t.Errorf("record %d: %q, OpenRLHF %q (%v)", i, got, c.Want[i], err)
				}
			}
		})
	}
}

// TestReadSFT_RewardConditioned: conditional SFT through ReadSFT: the
// prompt carries the score and is masked, records without a score or with
// a chat input are skipped and reported, bad settings are refused.
func TestReadSFT_RewardConditioned(t *testing.T) {
	path := writeFile(t, "csft.jsonl", `{"input": "A review:", "output": " Great.", "reward": 1.5}
{"input": "A review:", "output": " Bad.", "reward": -2}
{"input": "A review:", "output": " Meh."}
{"input": [{"role": "user", "content": "hi"}], "output": " Hi.", "reward": 0}
{"input": "A review:", "output": " Fine.", "reward": "high"}
`)
	e := encoder(t, false, "", 64)
	k := SFTKeys{InputKey: "input", OutputKey: "output", Reward: RewardConditioning{Template: DefaultRewardTemplate, RewardKey: "reward"}}
	samples, rep, err := e.ReadSFT(path, 0, k)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 || rep.Total != 5 || rep.Used != 2 || rep.SkippedTotal() != 3 {
		t.Fatalf("%d samples, report %s", len(samples), rep)
	}
	if !strings.Contains(rep.String(), `key "reward" is not a number (conditional SFT)`) || !strings.Contains(rep.String(), "conditional SFT needs text") {
		t.Errorf("report %s", rep)
	}
	for i, want := range []string{"A review: <rm_score>: 1.50 ", "A review: <rm_score>: -2.00 "} {
		s := samples[i]
		prompt := e.Tok.Decode(ints(s.IDs[1:s.PromptLen()]))
		if prompt != strings.TrimSpace(want) && prompt != want {
			t.Errorf("sample %d prompt %q, want %q", i, prompt, want)
		}
	}
	for _, c := range []struct {
		k    SFTKeys
		want string
	}{
		{SFTKeys{InputKey: "input", OutputKey: "output", Reward: RewardConditioning{Template: "{input} only", RewardKey: "reward"}}, "has no {reward}"},
		{SFTKeys{InputKey: "input", OutputKey: "output", Reward: RewardConditioning{Template: "{input}{reward}"}}, "--data.reward_key is empty"},
		{SFTKeys{InputKey: "input", PretrainMode: true, Reward: RewardConditioning{Template: DefaultRewardTemplate, RewardKey: "r"}}, "pretrain mode"},
	} {
		if _, _, err := e.ReadSFT(path, 0, c.k); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.k.Reward, err, c.want)
		}
	}
	one := writeFile(t, "one.jsonl", `{"input": "A", "output": " B", "reward": 1}`+"\n")
	k.Reward.Normalize = true
	if _, _, err := e.ReadSFT(one, 0, k); err == nil || !strings.Contains(err.Error(), "--data.normalize_reward: needs at least 2 scores") {
		t.Errorf("normalising one score: %v", err)
	}
}

func ints(ids []int32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}
