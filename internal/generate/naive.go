package generate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gorlhf/gorlhf/internal/model"
)

// Naive is the engine's twin for tests and for the benchmark's reference
// line: one sample at a time, every step a full Forward over the whole
// sequence (no KV cache, no batching, no sharing). It uses the same
// sampler, generators and stop rules, so greedy outputs must equal the
// engine's and log-probs agree to float rounding (the engine's attention
// sums in another order). Completions carry WeightVersion 0.
func Naive(ctx context.Context, m model.Decoder, dec TextDecoder, eos []int32, r Request) (Result, error) {
	p := r.Params.withDefaults()
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	if len(r.Prompt) == 0 {
		return Result{}, errors.New("generate: naive: prompt is empty")
	}
	if len(p.StopStrings) > 0 && dec == nil {
		return Result{}, errors.New("generate: naive: stop strings need a tokenizer")
	}
	rules := &stopRules{eos: eos, dec: dec, limit: m.KVShape().MaxPositions}
	start := time.Now()
	res := Result{ID: r.ID, PromptTokens: len(r.Prompt)}
	var sm sampler
	for i := 0; i < p.N; i++ {
		st := newSampleState(&p, r.Prompt, i, 0)
		tokens := append([]int32(nil), r.Prompt...)
		for !st.done {
			if err := ctx.Err(); err != nil {
				return Result{}, err
			}
			if rules.limit > 0 && len(tokens) >= rules.limit {
				return Result{}, fmt.Errorf("generate: naive: prompt of %d tokens leaves no room under the %d-position limit", len(tokens), rules.limit)
			}
			x := sm.sample(lastLogits(m, tokens), &p, st.draw())
			tokens = append(tokens, x.token)
			st.accept(x, len(tokens), rules)
			if res.TimeToFirstToken == 0 {
				res.TimeToFirstToken = time.Since(start)
			}
		}
		res.Completions = append(res.Completions, st.comp)
	}
	return res, nil
}

// lastLogits runs Forward over ids and returns the last position's logits.
func lastLogits(m model.CausalLM, ids []int32) []float32 {
	pos := make([]int32, len(ids))
	for i := range pos {
		pos[i] = int32(i)
	}
	out := m.Forward(nil, ids, pos, nil, 1, len(ids))
	v := out.Shape[2]
	return out.Data[(len(ids)-1)*v:]
}
