// Package reward scores finished rollouts: it turns (prompt, response,
// label) into the scalar reward RL trains on, whatever produces it.
//
// The trainer sees one interface, Source. Behind it can sit a rule grader
// (math final-answer match, exact or regex match, length, format; package
// grade), a reward model run in-process (package reward/rmodel), a remote
// reward service speaking OpenRLHF's HTTP protocol (Remote; Server is the
// other end of that protocol), or a weighted mix of several (Mix). Keeping
// one interface means a run can switch from a verifier to a reward model
// or a remote service by changing a flag, and tests can check each source
// on its own.
//
// Every Source follows OpenRLHF's contract: a batch is scored as a whole,
// one Result per Sample in order, or the call fails; a partial batch is
// never returned, so no rollout is silently trained on a missing reward.
// The samples and results themselves are plain data in package grade.
package reward

import (
	"context"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// Source scores batches of samples. Implementations are safe for
// concurrent use. Score returns exactly one Result per Sample, in order,
// or an error and no results.
type Source interface {
	Score(ctx context.Context, samples []grade.Sample) ([]grade.Result, error)
}

// Func adapts a per-sample function to a Source: the reward and score are
// both f's value. It is how a Go caller plugs in a custom verifier, as an
// OpenRLHF user passes a reward_func .py file.
type Func func(ctx context.Context, s grade.Sample) (float64, error)

// Score implements Source.
func (f Func) Score(ctx context.Context, samples []grade.Sample) ([]grade.Result, error) {
	out := make([]grade.Result, len(samples))
	for i, s := range samples {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r, err := f(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("reward: sample %d: %w", i, err)
		}
		out[i] = grade.Result{Reward: r, Score: r}
	}
	return out, grade.CheckResults(out, len(samples))
}
