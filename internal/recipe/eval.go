package recipe

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// EvalConfig says how a model is scored on a problem set.
type EvalConfig struct {
	// Samples is the completions per problem; the accuracy is over all of
	// them. Greedy decoding (Temperature 0) needs only 1.
	Samples int
	// Temperature of sampling; 0 is greedy.
	Temperature float64
	// MaxNewTokens bounds each answer; a longer one is cut (and wrong).
	MaxNewTokens int
	// Seed fixes the sampling draws, so two models are compared on the
	// same random stream.
	Seed uint64
	// StopNewline also ends an answer at a newline (the answer keeps it;
	// the grader trims it): a model taught multi-turn transcripts goes on
	// with the next question after its answer.
	StopNewline bool
}

// Greedy is greedy decoding with up to 8 answer tokens.
func Greedy() EvalConfig { return EvalConfig{Samples: 1, MaxNewTokens: 8} }

// Sampled is 8 samples per problem at temperature 1, the policy's own
// distribution during RL.
func Sampled(seed uint64) EvalConfig {
	return EvalConfig{Samples: 8, Temperature: 1, MaxNewTokens: 8, Seed: seed}
}

// Validate checks the ranges.
func (c EvalConfig) Validate() error {
	if c.Samples < 1 || c.MaxNewTokens < 1 || !(c.Temperature >= 0) {
		return fmt.Errorf("recipe: eval: samples %d and max new tokens %d must be ≥ 1, temperature %g ≥ 0",
			c.Samples, c.MaxNewTokens, c.Temperature)
	}
	return nil
}

// Answer is one graded completion.
type Answer struct {
	Problem  Problem
	Response string
	Correct  bool
}

// EvalResult is a model's accuracy on a problem set.
type EvalResult struct {
	Accuracy float64 // share of completions graded correct, in [0, 1]
	Correct  int
	Total    int
	Answers  []Answer // the first completion of every problem, in order
}

// Evaluate generates answers to every problem with m (read-only while it
// runs) and grades them with ExactGrader. Prompts are encoded as the RL
// and SFT trainers encode them: BOS, then the prompt text.
func Evaluate(ctx context.Context, m model.CausalLM, tok tokenizer.Tokenizer, ps []Problem, c EvalConfig) (EvalResult, error) {
	if err := c.Validate(); err != nil {
		return EvalResult{}, err
	}
	if len(ps) == 0 {
		return EvalResult{}, errors.New("recipe: eval: no problems")
	}
	dec, ok := m.(model.Decoder)
	if !ok {
		return EvalResult{}, fmt.Errorf("recipe: eval: a %T cannot generate", m)
	}
	gc := generate.DefaultConfig()
	gc.KVCacheMB = 64
	eos := tok.Specials().EOS
	if eos >= 0 {
		gc.EOS = []int32{int32(eos)}
	}
	eng, err := generate.New(dec, nil, gc)
	if err != nil {
		return EvalResult{}, fmt.Errorf("recipe: eval: %w", err)
	}
	defer eng.Close()
	var stop []int32
	if c.StopNewline {
		for _, id := range tokenizer.EncodeContinuation(tok, "\n", tokenizer.EncodeOptions{}) {
			stop = append(stop, int32(id))
		}
		if len(stop) != 1 {
			return EvalResult{}, fmt.Errorf("recipe: eval: a newline is %d tokens, want 1", len(stop))
		}
	}
	reqs := make([]generate.Request, len(ps))
	for i, p := range ps {
		reqs[i] = generate.Request{Prompt: EncodePrompt(tok, p.Prompt()), Params: generate.SamplingParams{N: c.Samples,
			MaxNewTokens: c.MaxNewTokens, Temperature: float32(c.Temperature), Seed: c.Seed + uint64(i), StopTokenIDs: stop}}
	}
	res, err := eng.Generate(ctx, reqs)
	if err != nil {
		return EvalResult{}, fmt.Errorf("recipe: eval: %w", err)
	}
	return gradeAll(ps, res, tok, int32(eos))
}

// gradeAll scores every completion with the exact-match grader.
func gradeAll(ps []Problem, res []generate.Result, tok tokenizer.Tokenizer, eos int32) (EvalResult, error) {
	grader, err := ExactGrader()
	if err != nil {
		return EvalResult{}, err
	}
	var out EvalResult
	for i, r := range res {
		for j, c := range r.Completions {
			text := DecodeResponse(tok, c.Tokens, eos)
			v, err := grader.Grade(grade.Sample{Prompt: ps[i].Prompt(), Response: text, Label: ps[i].Answer()})
			if err != nil {
				return EvalResult{}, fmt.Errorf("recipe: eval: %w", err)
			}
			ok := v == 1
			if ok {
				out.Correct++
			}
			out.Total++
			if j == 0 {
				out.Answers = append(out.Answers, Answer{Problem: ps[i], Response: text, Correct: ok})
			}
		}
	}
	out.Accuracy = float64(out.Correct) / float64(max(out.Total, 1))
	return out, nil
}

// EncodePrompt is the prompt encoder's ids (data.PromptEncoder) with the
// tokenizer's BOS first, as the recipes' stories260K-based models want:
// BOS (when the tokenizer has one) and the prompt's tokens.
func EncodePrompt(tok tokenizer.Tokenizer, text string) []int32 {
	enc := data.PromptEncoder{Tok: tok, BOS: int32(tok.Specials().BOS)}
	p, err := enc.Text(text)
	if err != nil {
		return nil // only an empty prompt with a tokenizer without BOS
	}
	return p.IDs
}

// DecodeResponse is a response's text without a final EOS token.
func DecodeResponse(tok tokenizer.Tokenizer, ids []int32, eos int32) string {
	if n := len(ids); n > 0 && eos >= 0 && ids[n-1] == eos {
		ids = ids[:n-1]
	}
	out := make([]int, len(ids))
	for i, id := range slices.Clip(ids) {
		out[i] = int(id)
	}
	return tok.Decode(out)
}
