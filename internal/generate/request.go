package generate

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// DefaultMaxNewTokens is the length limit of a request that sets none.
const DefaultMaxNewTokens = 256

// MaxTopLogProbs caps SamplingParams.TopLogProbs (OpenAI allows 20).
const MaxTopLogProbs = 20

// SamplingParams says how the completions of one prompt are drawn. The
// zero value is one greedy sample of up to DefaultMaxNewTokens tokens.
//
// Filters apply in Hugging Face's order: temperature, top-k, top-p, min-p.
type SamplingParams struct {
	N            int     // completions of the prompt (G); 0 means 1
	MaxNewTokens int     // length limit; 0 means DefaultMaxNewTokens
	Temperature  float32 // 0 means greedy (argmax, lowest id on ties)
	TopK         int     // keep the k most likely tokens; 0 means off
	TopP         float32 // keep the smallest set with mass ≥ p; 0 or 1 means off
	MinP         float32 // drop tokens below MinP·p_max; 0 means off
	// Seed decides every random draw: sample i draws from a generator
	// seeded by (Seed, i) alone, so a request's tokens never depend on the
	// other requests in the batch. 0 is a seed like any other.
	Seed uint64
	// StopTokenIDs end a sample when generated (the token is kept in
	// Tokens, as RL needs it, and left out of Text). They add to the
	// engine's EOS ids unless IgnoreEOS is set.
	StopTokenIDs []int32
	IgnoreEOS    bool
	// StopStrings end a sample as soon as its text contains one; Text is
	// cut before it, Tokens keep the token that completed it. Needs an
	// engine built with a TextDecoder.
	StopStrings []string
	// TopLogProbs is how many most likely alternatives (under the raw
	// model) to report per generated token; 0 means none.
	TopLogProbs int
}

// withDefaults fills the zero-means-default fields.
func (p SamplingParams) withDefaults() SamplingParams {
	if p.N == 0 {
		p.N = 1
	}
	if p.MaxNewTokens == 0 {
		p.MaxNewTokens = DefaultMaxNewTokens
	}
	return p
}

// greedy reports whether sampling is argmax.
func (p *SamplingParams) greedy() bool { return p.Temperature == 0 }

// Validate checks ranges. It is called on every request before it is
// queued, so bad user input becomes an error, never a panic.
func (p SamplingParams) Validate() error {
	finite := func(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }
	switch {
	case p.N < 0:
		return fmt.Errorf("n must be ≥ 1, got %d", p.N)
	case p.MaxNewTokens < 0:
		return fmt.Errorf("max new tokens must be ≥ 1, got %d", p.MaxNewTokens)
	case !finite(p.Temperature) || p.Temperature < 0:
		return fmt.Errorf("temperature must be ≥ 0, got %g", p.Temperature)
	case p.TopK < 0:
		return fmt.Errorf("top-k must be ≥ 0, got %d", p.TopK)
	case !finite(p.TopP) || p.TopP < 0 || p.TopP > 1:
		return fmt.Errorf("top-p must be in [0, 1], got %g", p.TopP)
	case !finite(p.MinP) || p.MinP < 0 || p.MinP > 1:
		return fmt.Errorf("min-p must be in [0, 1], got %g", p.MinP)
	case p.TopLogProbs < 0 || p.TopLogProbs > MaxTopLogProbs:
		return fmt.Errorf("top logprobs must be in [0, %d], got %d", MaxTopLogProbs, p.TopLogProbs)
	}
	for _, s := range p.StopStrings {
		if s == "" {
			return errors.New("stop strings must not be empty")
		}
	}
	return nil
}

// Request is one prompt to complete.
type Request struct {
	ID     string  // echoed in the Result; may be empty
	Prompt []int32 // token ids, ≥ 1 (add BOS yourself if the model wants it)
	Params SamplingParams
}

// FinishReason says why a completion ended.
type FinishReason string

const (
	FinishStop   FinishReason = "stop"   // a stop token id or stop string
	FinishLength FinishReason = "length" // MaxNewTokens, or the model's position limit
)

// TokenLogProb is a token and its log-probability.
type TokenLogProb struct {
	Token   int32
	LogProb float32
}

// Completion is one sampled continuation of a prompt.
type Completion struct {
	Index int // sample index within the request, 0…N−1
	// Tokens are the generated ids (a final stop token included).
	Tokens []int32
	// LogProbs[i] is log q(Tokens[i]) under the distribution the token was
	// actually drawn from (after temperature and filters; 0 for greedy).
	LogProbs []float32
	// RawLogProbs[i] is log π(Tokens[i] | context) under the raw model
	// (temperature 1, no filter): what RL losses need as log π_old.
	RawLogProbs []float32
	// TopLogProbs[i] are the SamplingParams.TopLogProbs most likely tokens
	// at step i under the raw model; nil unless asked for.
	TopLogProbs [][]TokenLogProb
	// Text is the decoded text (engine with a TextDecoder only), cut at a
	// stop string. It is decoded after the prompt, as HF and vLLM do, so
	// it is what prompt text + Text reads: " upon a time" after "Once"
	// with a SentencePiece tokenizer, whose Decode of the ids alone drops
	// the leading space.
	Text         string
	FinishReason FinishReason
	// WeightVersion is the policy version (see Engine.LoadWeights) that
	// produced every token of this completion.
	WeightVersion int64
}

// Result is the outcome of one Request.
type Result struct {
	ID           string
	PromptTokens int
	Completions  []Completion // in sample order
	// TimeToFirstToken is from submission to the first sampled token of
	// any of the request's samples.
	TimeToFirstToken time.Duration
}

// Event is one streamed step of a request: a token of one sample, or the
// end of a sample (Done, with the finished Completion), or a failure
// (Err, always last).
type Event struct {
	Index      int // sample index
	Token      int32
	LogProb    float32
	RawLogProb float32
	Top        []TokenLogProb
	// Done marks the sample's last event; Completion is then set.
	Done       bool
	Completion *Completion
	Err        error
}
