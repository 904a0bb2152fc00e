package head

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ScoreConfig turns a causal LM's config.json into its reward model's:
// the *ForSequenceClassification architecture with one label, and
// OpenRLHF's value_head_prefix.
func ScoreConfig(cfg []byte) ([]byte, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &keys); err != nil {
		return nil, fmt.Errorf("head: config.json: %w", err)
	}
	var archs []string
	if err := json.Unmarshal(keys["architectures"], &archs); err != nil || len(archs) == 0 {
		return nil, fmt.Errorf("head: config.json has no architectures")
	}
	arch := archs[0]
	switch {
	case arch == "GPT2LMHeadModel":
		arch = "GPT2ForSequenceClassification"
	case strings.HasSuffix(arch, "ForCausalLM"):
		arch = strings.TrimSuffix(arch, "ForCausalLM") + "ForSequenceClassification"
	default:
		return nil, fmt.Errorf("head: architecture %s is not a causal LM", arch)
	}
	set := func(k string, v any) { keys[k], _ = json.Marshal(v) }
	set("architectures", []string{arch})
	set("num_labels", 1)
	set("id2label", map[string]string{"0": "LABEL_0"})
	set("label2id", map[string]int{"LABEL_0": 0})
	set("value_head_prefix", "score")
	return json.MarshalIndent(keys, "", "  ")
}
