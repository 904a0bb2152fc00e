package rm

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/load"
)

// scoreModel returns the reward model to train and its config.json: the
// loaded one when it already is a reward model, otherwise the causal LM's
// backbone with a fresh head drawn from seed (OpenRLHF's init_value_head)
// and a config naming the *ForSequenceClassification architecture.
func scoreModel(l *load.Loaded, seed uint64) (*head.ScoreModel, []byte, error) {
	if l.Score != nil {
		return l.Score, l.Config, nil
	}
	var hidden int
	switch {
	case l.Llama != nil:
		hidden = l.Llama.Config.Hidden
	case l.GPT2 != nil:
		hidden = l.GPT2.Config.Hidden
	default:
		return nil, nil, fmt.Errorf("rm: cannot put a head on a %s model", l.Arch)
	}
	sm := head.NewScoreModel(l.Model, hidden)
	sm.Head.Init(rand.New(rand.NewPCG(seed, 0x4ead)))
	cfg, err := scoreConfig(l.Config)
	if err != nil {
		return nil, nil, err
	}
	return sm, cfg, nil
}

// scoreConfig turns a causal LM's config.json into its reward model's:
// the *ForSequenceClassification architecture with one label, and
// OpenRLHF's value_head_prefix.
func scoreConfig(cfg []byte) ([]byte, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &keys); err != nil {
		return nil, fmt.Errorf("rm: config.json: %w", err)
	}
	var archs []string
	if err := json.Unmarshal(keys["architectures"], &archs); err != nil || len(archs) == 0 {
		return nil, fmt.Errorf("rm: config.json has no architectures")
	}
	arch := archs[0]
	switch {
	case arch == "GPT2LMHeadModel":
		arch = "GPT2ForSequenceClassification"
	case strings.HasSuffix(arch, "ForCausalLM"):
		arch = strings.TrimSuffix(arch, "ForCausalLM") + "ForSequenceClassification"
	default:
		return nil, fmt.Errorf("rm: architecture %s is not a causal LM", arch)
	}
	set := func(k string, v any) { keys[k], _ = json.Marshal(v) }
	set("architectures", []string{arch})
	set("num_labels", 1)
	set("id2label", map[string]string{"0": "LABEL_0"})
	set("label2id", map[string]int{"LABEL_0": 0})
	set("value_head_prefix", "score")
	return json.MarshalIndent(keys, "", "  ")
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
