package inproc

import "github.com/gorlhf/gorlhf/internal/model"

// Clone returns a deep copy of m (model.Clone): a model of the same
// architecture and configuration with its own copy of every weight. It is
// how one loaded model becomes the frozen reference, the trained actor and
// the rollout engine's copy without reading the files three times.
func Clone(m model.CausalLM) (model.CausalLM, error) { return model.Clone(m) }
