package role

// The rollout role's messages mirror the fields of the generate engine's
// requests and results that RL uses, as plain data: the driver builds
// them without the engine, and role/inproc converts them at the engine's
// door.

// SamplingParams say how the completions of one prompt are sampled. Zero
// values mean the rollout engine's defaults, as in generate.SamplingParams.
type SamplingParams struct {
	N            int     // completions of the prompt (G); 0 means 1
	MaxNewTokens int     // length limit; 0 means the engine's default
	Temperature  float32 // 0 means greedy
	TopK         int     // keep the k most likely tokens; 0 means off
	TopP         float32 // keep the smallest set with mass ≥ p; 0 or 1 means off
	MinP         float32 // drop tokens below MinP·p_max; 0 means off
	// Seed decides every random draw: sample i draws from a generator
	// seeded by (Seed, i) alone, so a prompt's completions never depend on
	// the other prompts of the call.
	Seed uint64
	// StopTokenIDs end a sample when generated (the token is kept); they
	// add to the engine's EOS ids unless IgnoreEOS is set.
	StopTokenIDs []int32
	IgnoreEOS    bool
	// StopStrings end a sample as soon as its text contains one; the
	// token that completed it is kept.
	StopStrings []string
}

// Prompt is one prompt to complete.
type Prompt struct {
	ID     string  // echoed in its Generation; may be empty
	Tokens []int32 // the prompt's token ids, ≥ 1 (BOS included when the model wants one)
	Params SamplingParams
}

// FinishReason says why a completion ended.
type FinishReason string

const (
	FinishStop   FinishReason = "stop"   // a stop token id (EOS) or stop string
	FinishLength FinishReason = "length" // MaxNewTokens, or the model's position limit
)

// Completion is one sampled continuation of a prompt.
type Completion struct {
	Index  int     // sample index within the prompt, 0…N−1
	Tokens []int32 // the generated ids, a final stop token included
	// RawLogProbs[i] is log π(Tokens[i] | context) under the raw model
	// (temperature 1, no filter): what the RL losses read as log π_old.
	RawLogProbs  []float32
	FinishReason FinishReason
	// WeightVersion is the policy version (see Rollout.LoadWeights) that
	// produced every token of this completion.
	WeightVersion int64
}

// Generation is the outcome of one Prompt.
type Generation struct {
	ID           string
	PromptTokens int
	Completions  []Completion // in sample order
}

// GenerateRequest asks the rollout engine for completions. Each prompt
// carries its own sample count and seed, so results do not depend on
// batching.
type GenerateRequest struct {
	Prompts []Prompt
}

// GenerateResult holds one Generation per prompt, in request order.
type GenerateResult struct {
	Results []Generation
	// PrefixCache is what the engine's prefix caching did for this call
	// (zero when it is off).
	PrefixCache PrefixCacheUse
}

// PrefixCacheUse counts the tokens a rollout engine looked up in its
// prefix cache and those it found there (and so did not prefill).
type PrefixCacheUse struct {
	QueryTokens, HitTokens int
}

// Add returns the sum of u and o.
func (u PrefixCacheUse) Add(o PrefixCacheUse) PrefixCacheUse {
	return PrefixCacheUse{QueryTokens: u.QueryTokens + o.QueryTokens, HitTokens: u.HitTokens + o.HitTokens}
}

// Param is one named parameter as plain data: its Hugging Face name, its
// shape and its row-major values.
type Param struct {
	Name  string
	Shape []int
	Data  []float32
}

// Weights is a policy snapshot for the rollout engine.
type Weights struct {
	// Version tags completions made with these weights (the driver counts
	// publishes: the initial policy is 0).
	Version int64
	// Params are copies of every parameter; the receiver owns them.
	Params []Param
}
