package load

import (
	"encoding/json"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/head"
)

// spec is a parsed config.json: which model to build and how.
type spec struct {
	Arch       string     // architectures[0] as resolved ("Qwen2ForCausalLM")
	arch       Arch       // its registry entry
	Score      bool       // *ForSequenceClassification: backbone + scalar head
	Backbone   model.Spec // the causal LM (the backbone of a score model)
	TorchDType string     // as written in config.json ("" if absent)
	PadTokenID int        // -1: none
	Norm       head.Norm  // reward normalisation (score models)
	Warnings   []string
}

// hfConfig holds the config.json fields that do not depend on the
// architecture. Pointers tell "absent or null" from a value.
type hfConfig struct {
	Architectures []string `json:"architectures"`
	ModelType     string   `json:"model_type"`
	TorchDType    *string  `json:"torch_dtype"`
	DType         *string  `json:"dtype"` // transformers v5 name

	ID2Label        map[string]string `json:"id2label"`
	NumLabels       *int              `json:"num_labels"`
	PadTokenID      json.RawMessage   `json:"pad_token_id"`
	NormalizeReward *bool             `json:"normalize_reward"`
	Mean            *float64          `json:"mean"`
	Std             *float64          `json:"std"`
}

// parseConfig reads a config.json and decides what to build: the
// architecture from the registry, its spec from the architecture's
// parser. The errors name the field at fault.
func parseConfig(data []byte) (*spec, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	name := ""
	if len(h.Architectures) > 0 {
		name = h.Architectures[0]
	}
	a, score, err := lookup(name, h.ModelType)
	if err != nil {
		return nil, err
	}
	sp := &spec{Arch: name, arch: a, Score: score, PadTokenID: -1, Norm: head.DefaultNorm()}
	if name == "" {
		sp.Arch = a.CausalLM
	}
	switch {
	case h.TorchDType != nil:
		sp.TorchDType = *h.TorchDType
	case h.DType != nil:
		sp.TorchDType = *h.DType
	}
	if sp.Backbone, sp.Warnings, err = a.Parse(data, score); err != nil {
		return nil, fmt.Errorf("config.json (%s): %w", sp.Arch, err)
	}
	if sp.Score {
		if err := scoreSpec(&h, sp); err != nil {
			return nil, fmt.Errorf("config.json (%s): %w", sp.Arch, err)
		}
	}
	return sp, nil
}

// scoreSpec reads the head size, the pad token and OpenRLHF's reward
// normalisation. num_labels comes from id2label as in transformers; when
// neither id2label nor num_labels is given we assume 1 (transformers would
// assume 2, which is not a scalar head).
func scoreSpec(h *hfConfig, sp *spec) error {
	n := 1
	switch {
	case len(h.ID2Label) > 0:
		n = len(h.ID2Label)
	case h.NumLabels != nil:
		n = *h.NumLabels
	}
	if n != 1 {
		return fmt.Errorf("num_labels = %d (from id2label): only a scalar head (1 label) is supported", n)
	}
	if len(h.PadTokenID) > 0 && string(h.PadTokenID) != "null" {
		var pad int
		if err := json.Unmarshal(h.PadTokenID, &pad); err != nil {
			return fmt.Errorf("pad_token_id: %w", err)
		}
		sp.PadTokenID = pad
	}
	sp.Norm.Normalize = model.HFOr(h.NormalizeReward, false)
	sp.Norm.Mean = model.HFOr(h.Mean, 0)
	sp.Norm.Std = model.HFOr(h.Std, 1)
	if !(sp.Norm.Std > 0) {
		return fmt.Errorf("std = %g, want > 0", sp.Norm.Std)
	}
	return nil
}
