package load

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/llama"
)

// Arch is one architecture Load can build, under its Hugging Face names.
// Everything else callers need (sizes, a like model, a score head) comes
// from the model itself (model.CausalLM), so an architecture is its
// package plus one entry in builtin.
type Arch struct {
	// ModelType is config.json's model_type ("qwen2").
	ModelType string
	// CausalLM and Score are the architectures[0] names of its causal LM
	// ("Qwen2ForCausalLM") and of its *ForSequenceClassification model
	// ("Qwen2ForSequenceClassification").
	CausalLM, Score string
	// Parse reads config.json into the model's spec. score says the model
	// is a *ForSequenceClassification, whose scalar head replaces the LM
	// head. The warnings are for the user; errors name the field at fault.
	Parse func(configJSON []byte, score bool) (model.Spec, []string, error)
	// TensorName maps a stored tensor name to the parameter name, or ""
	// for a stored buffer that is not a weight; nil keeps every name.
	TensorName func(stored string) string
	// TiedEmbedding is the parameter a tied "lm_head.weight" equals (some
	// exporters store both); "" when the architecture has none.
	TiedEmbedding string
}

// builtin lists the architectures gorlhf implements, one line each.
var builtin = []Arch{
	{"llama", "LlamaForCausalLM", "LlamaForSequenceClassification", llama.Llama.ParseHF, llama.TensorName, llama.EmbedName},
	{"mistral", "MistralForCausalLM", "MistralForSequenceClassification", llama.Mistral.ParseHF, llama.TensorName, llama.EmbedName},
	{"qwen2", "Qwen2ForCausalLM", "Qwen2ForSequenceClassification", llama.Qwen2.ParseHF, llama.TensorName, llama.EmbedName},
	{"qwen3", "Qwen3ForCausalLM", "Qwen3ForSequenceClassification", llama.Qwen3.ParseHF, llama.TensorName, llama.EmbedName},
	{"gpt2", "GPT2LMHeadModel", "GPT2ForSequenceClassification", gpt2.ParseHF, gpt2.TensorName, gpt2.EmbedName},
}

// registry holds builtin and what Register adds.
var registry = struct {
	sync.RWMutex
	archs []Arch
}{archs: slices.Clone(builtin)}

// ErrUnsupportedArch is returned (wrapped) for a config.json whose
// architecture gorlhf does not implement.
var ErrUnsupportedArch = errors.New("unsupported architecture")

// openRLHFScoreArchs are the class names OpenRLHF gives its reward and
// critic models; the backbone then comes from model_type.
var openRLHFScoreArchs = []string{"RewardModel", "CriticModel"}

// Register adds an architecture to those Load, Open and Save accept. It is
// for programs and tests that bring an architecture of their own; the
// built-in ones are listed in builtin. Names already taken are an error.
// Safe for concurrent use.
func Register(a Arch) error {
	if a.ModelType == "" || a.CausalLM == "" || a.Score == "" || a.Parse == nil {
		return fmt.Errorf("load: register %+v: model_type, both architecture names and Parse are required", a.CausalLM)
	}
	registry.Lock()
	defer registry.Unlock()
	for _, b := range registry.archs {
		for _, n := range []string{a.ModelType, a.CausalLM, a.Score} {
			if n == b.ModelType || n == b.CausalLM || n == b.Score {
				return fmt.Errorf("load: register: %q is already registered", n)
			}
		}
	}
	registry.archs = append(registry.archs, a)
	return nil
}

// registered returns a snapshot of the registry.
func registered() []Arch {
	registry.RLock()
	defer registry.RUnlock()
	return slices.Clone(registry.archs)
}

// archOf finds the architecture whose causal LM or score model is name.
func archOf(name string) (Arch, bool) {
	for _, a := range registered() {
		if a.CausalLM == name || a.Score == name {
			return a, true
		}
	}
	return Arch{}, false
}

// SupportedArchitectures lists the architecture names Load accepts: the
// causal LMs, the *ForSequenceClassification models, then OpenRLHF's
// reward and critic classes.
func SupportedArchitectures() []string {
	var causal, score []string
	for _, a := range registered() {
		causal, score = append(causal, a.CausalLM), append(score, a.Score)
	}
	return slices.Concat(causal, score, openRLHFScoreArchs)
}

// lookup finds the architecture named name (config.json's
// architectures[0]) or, when name is "" or an OpenRLHF class, the one of
// modelType. It reports whether the model is a score model.
func lookup(name, modelType string) (Arch, bool, error) {
	archs := registered()
	for _, a := range archs {
		if name != "" && (a.CausalLM == name || a.Score == name) {
			if modelType != "" && modelType != a.ModelType {
				return Arch{}, false, fmt.Errorf("config.json: architecture %s with model_type %q (want %q)", name, modelType, a.ModelType)
			}
			return a, a.Score == name, nil
		}
	}
	if name == "" || slices.Contains(openRLHFScoreArchs, name) {
		for _, a := range archs {
			if a.ModelType == modelType {
				return a, name != "", nil
			}
		}
	}
	return Arch{}, false, fmt.Errorf("config.json: %w %q (model_type %q); supported: %s",
		ErrUnsupportedArch, name, modelType, strings.Join(SupportedArchitectures(), ", "))
}
