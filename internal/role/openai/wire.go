package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gorlhf/gorlhf/internal/role"
)

// defaultMaxNewTokens is what a role.SamplingParams MaxNewTokens of 0
// means (generate.DefaultMaxNewTokens; OpenAI's own default is 16).
const defaultMaxNewTokens = 256

// completionRequest is the body of POST /v1/completions for one prompt:
// token ids in, token ids and raw log-probs out (vLLM's return_token_ids
// and logprobs=0: the sampled token's log-prob, no alternatives).
type completionRequest struct {
	Model          string   `json:"model,omitempty"`
	Prompt         []int32  `json:"prompt"`
	N              int      `json:"n"`
	MaxTokens      int      `json:"max_tokens"`
	Temperature    float32  `json:"temperature"`
	TopP           *float32 `json:"top_p,omitempty"`
	TopK           *int     `json:"top_k,omitempty"`
	MinP           *float32 `json:"min_p,omitempty"`
	Seed           uint64   `json:"seed"`
	Stop           []string `json:"stop,omitempty"`
	StopTokenIDs   []int32  `json:"stop_token_ids,omitempty"`
	IgnoreEOS      bool     `json:"ignore_eos,omitempty"`
	Logprobs       int      `json:"logprobs"`
	ReturnTokenIDs bool     `json:"return_token_ids"`
}

// request builds the body for prompt p.
func (r *Rollout) request(p role.Prompt) completionRequest {
	s := p.Params
	q := completionRequest{Model: r.cfg.Model, Prompt: p.Tokens, N: max(s.N, 1), MaxTokens: s.MaxNewTokens,
		Temperature: s.Temperature, Seed: s.Seed, Stop: s.StopStrings, StopTokenIDs: s.StopTokenIDs,
		IgnoreEOS: s.IgnoreEOS, Logprobs: 0, ReturnTokenIDs: true}
	if q.MaxTokens == 0 {
		q.MaxTokens = defaultMaxNewTokens
	}
	if s.TopP > 0 && s.TopP < 1 {
		q.TopP = &s.TopP
	}
	if s.TopK > 0 {
		q.TopK = &s.TopK
	}
	if s.MinP > 0 {
		q.MinP = &s.MinP
	}
	return q
}

// completionAnswer is the part of the answer the rollout reads.
type completionAnswer struct {
	Choices []struct {
		Index          *int            `json:"index"`
		PromptTokenIDs []int32         `json:"prompt_token_ids"`
		TokenIDs       []int32         `json:"token_ids"`
		FinishReason   *string         `json:"finish_reason"`
		Logprobs       *choiceLogprobs `json:"logprobs"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	WeightVersion json.RawMessage `json:"weight_version"`
}

// choiceLogprobs is a choice's legacy logprobs; null entries are refused.
type choiceLogprobs struct {
	TokenLogprobs []*float32 `json:"token_logprobs"`
}

// parseVersion reads a weight_version given as a number or a string of
// digits (SGLang's).
func parseVersion(raw json.RawMessage) (int64, error) {
	text := string(raw)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		text = s
	}
	v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("weight_version %s is not an integer", raw)
	}
	return v, nil
}

// errStale marks an answer made with other weights than those last
// pushed.
var errStale = errors.New("stale weights")

// generation checks an answer against its request and converts it. Every
// rule is strict: a sample that cannot be trusted is an error, never
// passed on.
func (r *Rollout) generation(p role.Prompt, q *completionRequest, data []byte, want int64) (role.Generation, error) {
	var a completionAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return role.Generation{}, fmt.Errorf("answer is not a completion: %w", err)
	}
	if len(a.WeightVersion) > 0 && string(a.WeightVersion) != "null" {
		v, err := parseVersion(a.WeightVersion)
		if err != nil {
			return role.Generation{}, err
		}
		if v != want {
			return role.Generation{}, fmt.Errorf("%w: the engine generated with weight version %d, the version last pushed is %d", errStale, v, want)
		}
	} else if !r.cfg.Unversioned {
		return role.Generation{}, errors.New("the answer has no weight_version (an engine that reports none needs the vllm weight sync)")
	}
	if len(a.Choices) != q.N {
		return role.Generation{}, fmt.Errorf("%d choices for n=%d", len(a.Choices), q.N)
	}
	out := role.Generation{ID: p.ID, PromptTokens: len(p.Tokens), Completions: make([]role.Completion, q.N)}
	seen := make([]bool, q.N)
	total := 0
	for k, ch := range a.Choices {
		if ch.Index == nil || *ch.Index < 0 || *ch.Index >= q.N || seen[*ch.Index] {
			return role.Generation{}, fmt.Errorf("choice %d: index missing, out of [0, %d) or repeated", k, q.N)
		}
		i := *ch.Index
		seen[i] = true
		c, err := completion(q, i, ch.PromptTokenIDs, ch.TokenIDs, ch.FinishReason, ch.Logprobs)
		if err != nil {
			return role.Generation{}, fmt.Errorf("choice %d: %w", i, err)
		}
		c.WeightVersion = want
		out.Completions[i] = c
		total += len(c.Tokens)
	}
	if a.Usage == nil || a.Usage.CompletionTokens != total || a.Usage.PromptTokens != len(p.Tokens) {
		return role.Generation{}, fmt.Errorf("usage %+v does not count %d prompt and %d completion tokens", a.Usage, len(p.Tokens), total)
	}
	return out, nil
}

// completion checks one choice: the prompt echoed, 1…max_tokens tokens,
// one finite log-prob ≤ 0 per token, and a finish reason RL knows.
func completion(q *completionRequest, i int, prompt, tokens []int32, finish *string, lp *choiceLogprobs) (role.Completion, error) {
	if !slices.Equal(prompt, q.Prompt) {
		return role.Completion{}, fmt.Errorf("prompt_token_ids has %d ids, not the %d sent", len(prompt), len(q.Prompt))
	}
	if len(tokens) == 0 || len(tokens) > q.MaxTokens {
		return role.Completion{}, fmt.Errorf("%d token_ids, want 1…%d (max_tokens)", len(tokens), q.MaxTokens)
	}
	if lp == nil || len(lp.TokenLogprobs) != len(tokens) {
		n := 0
		if lp != nil {
			n = len(lp.TokenLogprobs)
		}
		return role.Completion{}, fmt.Errorf("%d log-probs for %d token_ids", n, len(tokens))
	}
	c := role.Completion{Index: i, Tokens: tokens, RawLogProbs: make([]float32, len(tokens))}
	for j, v := range lp.TokenLogprobs {
		if v == nil || math.IsInf(float64(*v), 0) || *v > 0 {
			return role.Completion{}, fmt.Errorf("token %d: log-prob %v is not a finite number ≤ 0", j, v)
		}
		c.RawLogProbs[j] = *v
	}
	switch {
	case finish == nil:
		return role.Completion{}, errors.New("no finish_reason")
	case *finish == string(role.FinishStop):
		c.FinishReason = role.FinishStop
	case *finish == string(role.FinishLength):
		c.FinishReason = role.FinishLength
	default:
		return role.Completion{}, fmt.Errorf("finish_reason %q (want stop or length)", *finish)
	}
	return c, nil
}
