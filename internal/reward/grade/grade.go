// Package grade holds what reward sources and their callers share as
// plain data, and the graders that need nothing else: a Sample to score,
// its Result, final-answer extraction and comparison (ExtractAnswer,
// MathCorrect) and the built-in rule graders (math, exact, regex, length,
// format; see Rule).
//
// It depends on the standard library alone, so that the role messages
// (package role) and the environments (package env) can carry samples
// and check answers without the model stack behind a reward model
// (package reward/rmodel).
package grade

import (
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

// CheckResults enforces the contract of every reward source on a result
// slice: one result per sample (n) and finite values. A NaN reward would
// poison every advantage of its group without a trace, so it is an error
// where it is produced.
func CheckResults(rs []Result, n int) error {
	if len(rs) != n {
		return fmt.Errorf("grade: %d results for %d samples", len(rs), n)
	}
	for i, r := range rs {
		if !finite(r.Reward) || !finite(r.Score) {
			return fmt.Errorf("grade: sample %d: reward %g, score %g: not finite", i, r.Reward, r.Score)
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
