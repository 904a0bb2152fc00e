package recipe

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// ArithmeticConfig describes a synthetic arithmetic task: every problem
// "a+b=" (or "a-b=") with a and b in their ranges, answered with the bare
// result. The problem space is small and enumerable on purpose: the split
// into training and held-out problems is then exact (no held-out problem
// can appear in training, whatever the number of samples drawn), and a
// 260K-parameter model can learn it in minutes.
type ArithmeticConfig struct {
	// Ops are the operators used, each one of '+' and '-'; "+" by default.
	Ops string
	// MinA…MaxA and MinB…MaxB bound the two operands (inclusive, ≥ 0).
	MinA, MaxA, MinB, MaxB int
	// HeldOut is how many problems are set aside, drawn by Seed; they never
	// appear in training data.
	HeldOut int
	// Seed draws the held-out problems and the order of the training ones.
	Seed uint64
}

// DefaultArithmeticConfig is two-digit plus one-digit addition with
// two-digit results (10…89 + 0…9 = 10…98): 800 problems, 200 held out.
// Every answer is two digit tokens under tok512, and each held-out
// problem is a new combination of facts the training problems teach
// (the ones-digit sum, the carry into the tens digit).
func DefaultArithmeticConfig() ArithmeticConfig {
	return ArithmeticConfig{Ops: "+", MinA: 10, MaxA: 89, MinB: 0, MaxB: 9, HeldOut: 200, Seed: 1}
}

// maxProblems bounds the enumerated problem space (it is held in memory).
const maxProblems = 1 << 20

// Validate checks the ranges and that some problems are left to train on.
func (c ArithmeticConfig) Validate() error {
	var errs []error
	if c.Ops == "" {
		errs = append(errs, errors.New("recipe: arithmetic: no operators (want some of \"+-\")"))
	}
	for _, op := range c.Ops {
		if op != '+' && op != '-' {
			errs = append(errs, fmt.Errorf("recipe: arithmetic: operator %q not supported (want + or -)", op))
		}
	}
	if c.MinA < 0 || c.MinB < 0 || c.MinA > c.MaxA || c.MinB > c.MaxB {
		errs = append(errs, fmt.Errorf("recipe: arithmetic: operand ranges [%d, %d] and [%d, %d] must be non-empty and ≥ 0",
			c.MinA, c.MaxA, c.MinB, c.MaxB))
	} else if n := c.spaceSize(); n > maxProblems {
		errs = append(errs, fmt.Errorf("recipe: arithmetic: %d problems exceed the limit of %d", n, maxProblems))
	} else if c.HeldOut < 1 || c.HeldOut >= n {
		errs = append(errs, fmt.Errorf("recipe: arithmetic: held-out count %d must be in [1, %d) (%d problems)", c.HeldOut, n, n))
	}
	return errors.Join(errs...)
}

// spaceSize is the number of distinct problems.
func (c ArithmeticConfig) spaceSize() int {
	return len(c.Ops) * (c.MaxA - c.MinA + 1) * (c.MaxB - c.MinB + 1)
}

// Problem is one arithmetic question.
type Problem struct {
	A, B int
	Op   byte // '+' or '-'
}

// Prompt is the text the policy sees, e.g. "23+4=".
func (p Problem) Prompt() string { return fmt.Sprintf("%d%c%d=", p.A, p.Op, p.B) }

// Value is the exact result.
func (p Problem) Value() int {
	if p.Op == '-' {
		return p.A - p.B
	}
	return p.A + p.B
}

// Answer is the expected response text, e.g. "27".
func (p Problem) Answer() string { return strconv.Itoa(p.Value()) }

// Problems enumerates the whole problem space in a fixed order (operator,
// then a, then b).
func (c ArithmeticConfig) Problems() []Problem {
	out := make([]Problem, 0, c.spaceSize())
	for _, op := range []byte(c.Ops) {
		for a := c.MinA; a <= c.MaxA; a++ {
			for b := c.MinB; b <= c.MaxB; b++ {
				out = append(out, Problem{A: a, B: b, Op: op})
			}
		}
	}
	return out
}

// Split shuffles the problem space with Seed and returns the training
// problems and the HeldOut held-out ones. The two are disjoint and
// together cover the space; the same configuration always gives the same
// split.
func (c ArithmeticConfig) Split() (train, heldOut []Problem, err error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	all := c.Problems()
	r := rand.New(rand.NewPCG(c.Seed, 0x6172697468))
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return all[c.HeldOut:], all[:c.HeldOut], nil
}

// Sample draws n problems (with replacement) from ps with a seeded
// generator: the SFT data of the recipe, where a problem may repeat.
func Sample(ps []Problem, n int, seed uint64) []Problem {
	if len(ps) == 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(seed, 0x73616d706c65))
	out := make([]Problem, n)
	for i := range out {
		out[i] = ps[r.IntN(len(ps))]
	}
	return out
}

// ExactGrader is the arithmetic task's verifier: reward 1 when the
// response, trimmed, is exactly the label (the answer), else 0. It is
// reward's built-in exact-match rule, so `gorlhf train ppo --reward.rule
// exact` grades the same way.
func ExactGrader() (*grade.RuleSource, error) {
	return grade.NewRule(grade.RuleConfig{Kind: grade.RuleExact})
}

// Dataset keys of the files WriteSFT and WritePrompts write.
const (
	KeyInput  = "input"  // the prompt, e.g. "23+4="
	KeyOutput = "output" // the SFT response, e.g. "27"
	KeyLabel  = "label"  // the grader's reference, e.g. "27"
)

// WriteSFT writes one {"input", "output"} record per problem (JSON Lines),
// the format of `gorlhf train sft --data.input_key input
// --data.output_key output`.
func WriteSFT(path string, ps []Problem) error {
	return writeJSONL(path, ps, func(p Problem) map[string]string {
		return map[string]string{KeyInput: p.Prompt(), KeyOutput: p.Answer()}
	})
}

// WritePrompts writes one {"input", "label"} record per problem, the
// prompt dataset of `gorlhf train ppo --data.input_key input
// --data.label_key label --reward.rule exact`.
func WritePrompts(path string, ps []Problem) error {
	return writeJSONL(path, ps, func(p Problem) map[string]string {
		return map[string]string{KeyInput: p.Prompt(), KeyLabel: p.Answer()}
	})
}

func writeJSONL(path string, ps []Problem, rec func(Problem) map[string]string) error {
	var b strings.Builder
	for _, p := range ps {
		line, err := json.Marshal(rec(p))
		if err != nil {
			return fmt.Errorf("recipe: %s: %w", path, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("recipe: %w", err)
	}
	return nil
}
