package env

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// ArithmeticConfig configures the chained-arithmetic environment.
type ArithmeticConfig struct {
	// Steps is the number of questions per episode.
	Steps int
	// Max bounds the operands: each is drawn from 1…Max.
	Max int
	// Seed fixes the questions of an episode whose label is not a seed.
	Seed uint64
}

// DefaultArithmeticConfig asks 3 questions with operands up to 9.
func DefaultArithmeticConfig() ArithmeticConfig { return ArithmeticConfig{Steps: 3, Max: 9, Seed: 1} }

// Validate checks the configuration.
func (c ArithmeticConfig) Validate() error {
	switch {
	case c.Steps < 1:
		return fmt.Errorf("env: arithmetic: steps %d must be ≥ 1", c.Steps)
	case c.Max < 1 || c.Max > 1_000_000:
		return fmt.Errorf("env: arithmetic: max operand %d must be in [1, 1000000]", c.Max)
	}
	return nil
}

// Arithmetic is a multi-step arithmetic game with a verifiable outcome.
// The first question is a product "What is a * b?"; each later one
// changes the previous answer ("Add c to the previous answer.",
// "Subtract c …", "Multiply the previous answer by c."). Each answer is
// read with grade.ExtractAnswer (a bare number, "#### N", \boxed{N} and
// "The answer is N" all work) and checked exactly; a right answer earns
// 1/Steps, so an episode's return is the fraction answered correctly.
// After a wrong answer the feedback gives the right one and the next
// question builds on it, so one slip costs one step, not the rest.
//
// The questions depend only on the seed: the label when it is a decimal
// integer (so a dataset can pin each prompt's problem), else
// ArithmeticConfig.Seed.
type Arithmetic struct {
	cfg   ArithmeticConfig
	steps []arithStep
	step  int // index of the question being answered; −1 before Reset
}

// arithStep is one question and the value it asks for.
type arithStep struct {
	question string
	answer   int64
}

// NewArithmetic returns an environment; call Reset before Step.
func NewArithmetic(cfg ArithmeticConfig) (*Arithmetic, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Arithmetic{cfg: cfg, step: -1}, nil
}

// Problem returns the questions and answers an episode with seed poses.
func (a *Arithmetic) Problem(seed uint64) (questions []string, answers []int64) {
	for _, s := range a.plan(seed) {
		questions, answers = append(questions, s.question), append(answers, s.answer)
	}
	return questions, answers
}

// plan draws the episode's questions from seed.
func (a *Arithmetic) plan(seed uint64) []arithStep {
	r := rand.New(rand.NewPCG(seed, 0x61726974686d))
	operand := func() int64 { return 1 + r.Int64N(int64(a.cfg.Max)) }
	x, y := operand(), operand()
	steps := []arithStep{{fmt.Sprintf("What is %d * %d?", x, y), x * y}}
	v := x * y
	for len(steps) < a.cfg.Steps {
		c := operand()
		var q string
		switch r.IntN(3) {
		case 0:
			q, v = fmt.Sprintf("Add %d to the previous answer.", c), v+c
		case 1:
			q, v = fmt.Sprintf("Subtract %d from the previous answer.", c), v-c
		default:
			q, v = fmt.Sprintf("Multiply the previous answer by %d.", c), v*c
		}
		steps = append(steps, arithStep{q, v})
	}
	return steps
}

// Reset implements Env. The observation is the prompt (ended with a
// newline when it has none), then the first question as "Q1: …\nA: ".
func (a *Arithmetic) Reset(ctx context.Context, prompt, label string) (string, error) {
	seed := a.cfg.Seed
	if s, err := strconv.ParseUint(strings.TrimSpace(label), 10, 64); err == nil {
		seed = s
	}
	a.steps, a.step = a.plan(seed), 0
	if prompt != "" && !strings.HasSuffix(prompt, "\n") {
		prompt += "\n"
	}
	return prompt + question(1, a.steps[0].question), nil
}

func question(n int, q string) string { return fmt.Sprintf("Q%d: %s\nA: ", n, q) }

// Step implements Env.
func (a *Arithmetic) Step(ctx context.Context, action string) (string, float64, bool, error) {
	if a.step < 0 {
		return "", 0, false, errors.New("arithmetic: Step before Reset")
	}
	if a.step >= len(a.steps) {
		return "", 0, false, errors.New("arithmetic: Step after the episode ended")
	}
	cur := a.steps[a.step]
	want := strconv.FormatInt(cur.answer, 10)
	got, form := grade.ExtractAnswer(action)
	r, fb := 0.0, fmt.Sprintf("\nWrong, the answer is %s.\n", want)
	if form != grade.FormNone && grade.AnswersEqual(got, want) {
		r, fb = 1/float64(len(a.steps)), "\nCorrect.\n"
	}
	a.step++
	if a.step == len(a.steps) {
		return fb, r, true, nil
	}
	return fb + question(a.step+1, a.steps[a.step].question), r, false, nil
}

// ArithmeticFactory returns a constructor of fresh environments, one per
// episode, for running episodes in parallel.
func ArithmeticFactory(cfg ArithmeticConfig) (Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return func() Env { a, _ := NewArithmetic(cfg); return a }, nil
}
