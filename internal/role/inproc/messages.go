package inproc

import (
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Conversions between the role messages (plain data) and the types of
// the engine and the models they stand for.

// engineRequests turns the prompts of a GenerateRequest into engine
// requests (the token slices are shared, not copied).
func engineRequests(ps []role.Prompt) []generate.Request {
	out := make([]generate.Request, len(ps))
	for i, p := range ps {
		s := p.Params
		out[i] = generate.Request{ID: p.ID, Prompt: p.Tokens, Params: generate.SamplingParams{N: s.N, MaxNewTokens: s.MaxNewTokens,
			Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, MinP: s.MinP, Seed: s.Seed,
			StopTokenIDs: s.StopTokenIDs, IgnoreEOS: s.IgnoreEOS, StopStrings: s.StopStrings}}
	}
	return out
}

// generations turns engine results into role results (the engine hands
// its slices over; they are not copied).
func generations(rs []generate.Result) []role.Generation {
	out := make([]role.Generation, len(rs))
	for i, r := range rs {
		g := role.Generation{ID: r.ID, PromptTokens: r.PromptTokens, Completions: make([]role.Completion, len(r.Completions))}
		for j, c := range r.Completions {
			g.Completions[j] = role.Completion{Index: c.Index, Tokens: c.Tokens, RawLogProbs: c.RawLogProbs,
				FinishReason: role.FinishReason(c.FinishReason), WeightVersion: c.WeightVersion}
		}
		out[i] = g
	}
	return out
}

// copyParams returns copies of every parameter as role.Param values.
func copyParams(params nn.Params) []role.Param {
	out := make([]role.Param, len(params))
	for i, p := range params {
		out[i] = role.Param{Name: p.Name, Shape: append([]int(nil), p.Tensor.Shape...), Data: append([]float32(nil), p.Tensor.Data...)}
	}
	return out
}

// ModelParams wraps role parameters as model parameters (sharing the
// values, not copying them).
func ModelParams(ps []role.Param) nn.Params {
	out := make(nn.Params, len(ps))
	for i, p := range ps {
		out[i] = nn.Param{Name: p.Name, Tensor: &tensor.Tensor{Shape: p.Shape, Data: p.Data}}
	}
	return out
}
