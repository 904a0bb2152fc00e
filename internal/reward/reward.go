// Package reward scores finished rollouts: it turns (prompt, response,
// label) into the scalar reward RL trains on, whatever produces it.
//
// The trainer sees one interface, Source. Behind it can sit a rule grader
// (math final-answer match, exact or regex match, length, format; see
// Rule), a reward model run in-process (ModelSource), a remote reward
// service speaking OpenRLHF's HTTP protocol (Remote; Server is the other
// end of that protocol), or a weighted mix of several (Mix). Keeping one
// interface means a run can switch from a verifier to a reward model or a
// remote service by changing a flag, and tests can check each source on
// its own.
//
// Every Source follows OpenRLHF's contract: a batch is scored as a whole,
// one Result per Sample in order, or the call fails; a partial batch is
// never returned, so no rollout is silently trained on a missing reward.
package reward

import (
	"context"
	"fmt"
	"math"
)

// Sample is one finished rollout to score.
type Sample struct {
	// Prompt is the prompt text as the policy saw it (after templates).
	Prompt string
	// Response is the generated text, without the prompt.
	Response string
	// Label is the dataset's reference (--data.label_key): a final answer,
	// a GSM8K answer with its "#### N" line, a pattern; "" when none.
	Label string
	// Query is the full text OpenRLHF sends as "query": prompt and
	// response decoded together, special tokens included. "" means
	// Prompt+Response (see Sample.Text).
	Query string
	// Tokens are the prompt+response token ids as generated, when known.
	// A reward model scores these directly instead of re-tokenizing.
	Tokens []int32
	// ResponseTokens is the number of response tokens (the tail of
	// Tokens, or counted by the engine); 0 when unknown.
	ResponseTokens int
	// FinishReason is why generation stopped: "stop" (EOS or a stop
	// string), "length" (token budget), or "" when unknown.
	FinishReason string
}

// Text is the full text a sequence-level scorer reads: Query when set,
// else Prompt+Response.
func (s Sample) Text() string {
	if s.Query != "" {
		return s.Query
	}
	return s.Prompt + s.Response
}

// Result is the reward of one Sample.
type Result struct {
	// Reward is what advantages are computed from.
	Reward float64
	// Score is OpenRLHF's separate "scores": a value, usually in [0, 1],
	// that dynamic filtering compares across a group (for a verifier it
	// equals Reward; a shaped or mixed reward may differ).
	Score float64
	// Extra holds named per-sample values for logging (a mix's
	// per-source rewards, a remote server's extra_logs); may be nil.
	Extra map[string]float64
}

// Source scores batches of samples. Implementations are safe for
// concurrent use. Score returns exactly one Result per Sample, in order,
// or an error and no results.
type Source interface {
	Score(ctx context.Context, samples []Sample) ([]Result, error)
}

// Func adapts a per-sample function to a Source: the reward and score are
// both f's value. It is how a Go caller plugs in a custom verifier, as an
// OpenRLHF user passes a reward_func .py file.
type Func func(ctx context.Context, s Sample) (float64, error)

// Score implements Source.
func (f Func) Score(ctx context.Context, samples []Sample) ([]Result, error) {
	out := make([]Result, len(samples))
	for i, s := range samples {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r, err := f(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("reward: sample %d: %w", i, err)
		}
		out[i] = Result{Reward: r, Score: r}
	}
	return out, checkResults(out, len(samples))
}

// checkResults enforces the Source contract on a result slice: the right
// length and finite values. A NaN reward would poison every advantage of
// its group without a trace, so it is an error where it is produced.
func checkResults(rs []Result, n int) error {
	if len(rs) != n {
		return fmt.Errorf("reward: %d results for %d samples", len(rs), n)
	}
	for i, r := range rs {
		if !finite(r.Reward) || !finite(r.Score) {
			return fmt.Errorf("reward: sample %d: reward %g, score %g: not finite", i, r.Reward, r.Score)
		}
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Rewards returns the Reward field of each result, as float32 for the
// RL math.
func Rewards(rs []Result) []float32 {
	out := make([]float32, len(rs))
	for i, r := range rs {
		out[i] = float32(r.Reward)
	}
	return out
}

// Scores returns the Score field of each result.
func Scores(rs []Result) []float32 {
	out := make([]float32, len(rs))
	for i, r := range rs {
		out[i] = float32(r.Score)
	}
	return out
}
