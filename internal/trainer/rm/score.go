package rm

import (
	"encoding/json"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/load"
)

// scoreModel returns the reward model to train and its config.json: the
// loaded one when it already is a reward model, otherwise the causal LM's
// backbone with a fresh head drawn from seed (OpenRLHF's init_value_head)
// and a config naming the *ForSequenceClassification architecture.
func scoreModel(l *load.Loaded, seed uint64) (*head.ScoreModel, []byte, error) {
	return load.ScoreModel(l, l.Model, rand.New(rand.NewPCG(seed, 0x4ead)))
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
