package rm

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

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
	cfg, err := head.ScoreConfig(l.Config)
	if err != nil {
		return nil, nil, err
	}
	return sm, cfg, nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
