package load

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/head"
)

// ScoreModel returns l's score model when l is one; otherwise it puts a
// fresh scalar head on backbone (a causal LM of l's architecture: l.Model
// itself or a Clone), drawn from r as OpenRLHF initialises a value head
// (head.Head.Init). It also returns the config.json to save the score
// model with (ScoreConfig of l's).
func ScoreModel(l *Loaded, backbone model.CausalLM, r *rand.Rand) (*head.ScoreModel, []byte, error) {
	if l.Score != nil {
		return l.Score, l.Config, nil
	}
	sm := head.NewScoreModel(backbone, backbone.Dims().Hidden)
	sm.Head.Init(r)
	cfg, err := ScoreConfig(l.Config)
	if err != nil {
		return nil, nil, err
	}
	return sm, cfg, nil
}

// ScoreConfig turns a causal LM's config.json into its score model's: the
// architecture's *ForSequenceClassification name (from the registry) with
// one label, and OpenRLHF's value_head_prefix.
func ScoreConfig(cfg []byte) ([]byte, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &keys); err != nil {
		return nil, fmt.Errorf("load: score config: config.json: %w", err)
	}
	var archs []string
	if err := json.Unmarshal(keys["architectures"], &archs); err != nil || len(archs) == 0 {
		return nil, fmt.Errorf("load: score config: config.json has no architectures")
	}
	a, ok := archOf(archs[0])
	if !ok || a.CausalLM != archs[0] {
		return nil, fmt.Errorf("load: score config: architecture %s is not a causal LM gorlhf knows", archs[0])
	}
	set := func(k string, v any) { keys[k], _ = json.Marshal(v) }
	set("architectures", []string{a.Score})
	set("num_labels", 1)
	set("id2label", map[string]string{"0": "LABEL_0"})
	set("label2id", map[string]int{"LABEL_0": 0})
	set("value_head_prefix", "score")
	return json.MarshalIndent(keys, "", "  ")
}
