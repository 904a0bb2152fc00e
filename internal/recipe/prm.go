package recipe

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
)

// StepDataConfig describes the synthetic step-tagged dataset of the
// process-reward-model recipe: chains such as "23+4-7+5", solved one
// operation per step ("23+4=27 @"), each step ending with the step tag.
// Half the solutions are right; in the other half one step's result is off
// by a small amount and the later steps carry on correctly from the wrong
// value. As in Math-Shepherd, a step is labelled positive when it and
// every step before it are right, negative from the first wrong step on.
// Training and held-out chains start from disjoint first numbers, so no
// held-out chain appears in training.
type StepDataConfig struct {
	Seed            uint64
	Train, HeldOut  int    // samples of each split
	MinSteps        int    // operations per chain, at least
	MaxSteps        int    // and at most
	Tag             string // the step tag, e.g. "@" (a single token under tok512)
	Positive        string // label of a right step, e.g. "+"
	Negative        string // label of a wrong step, e.g. "-"
	HeldOutFirstMod int    // a chain is held out when its first number % this == 0
	// Deltas are what a corrupted step's result is off by (one drawn at
	// random, keeping the result ≥ 0).
	Deltas []int
}

// DefaultStepDataConfig is 4,000 training and 400 held-out solutions of
// 2 to 4 steps over numbers 10…99, tagged with "@", labelled "+" and "-";
// a corrupted step is off by ±10, ±20 or ±30 (its tens digit is wrong).
func DefaultStepDataConfig() StepDataConfig {
	return StepDataConfig{Seed: 15, Train: 4000, HeldOut: 400, MinSteps: 2, MaxSteps: 4,
		Tag: "@", Positive: "+", Negative: "-", HeldOutFirstMod: 5, Deltas: []int{-30, -20, -10, 10, 20, 30}}
}

// Validate checks the sizes and labels.
func (c StepDataConfig) Validate() error {
	var errs []error
	if c.Train < 1 || c.HeldOut < 0 {
		errs = append(errs, fmt.Errorf("recipe: step data: %d training and %d held-out samples", c.Train, c.HeldOut))
	}
	if c.MinSteps < 1 || c.MaxSteps < c.MinSteps {
		errs = append(errs, fmt.Errorf("recipe: step data: steps %d…%d", c.MinSteps, c.MaxSteps))
	}
	if c.Tag == "" || c.Positive == "" || c.Negative == "" || c.Positive == c.Negative {
		errs = append(errs, errors.New("recipe: step data: the tag and two distinct labels are required"))
	}
	if len(c.Deltas) == 0 || slices.Contains(c.Deltas, 0) {
		errs = append(errs, fmt.Errorf("recipe: step data: deltas %v must be non-empty and non-zero", c.Deltas))
	}
	if c.HeldOutFirstMod < 2 {
		errs = append(errs, fmt.Errorf("recipe: step data: held-out modulus %d < 2", c.HeldOutFirstMod))
	}
	return errors.Join(errs...)
}

// StepSample is one step-tagged solution and its labels.
type StepSample struct {
	Input  string   `json:"input"`
	Label  []string `json:"label"`
	Answer string   `json:"answer"` // the right final value (for reference)
}

// StepData returns the training and held-out samples, the same for the
// same configuration.
func (c StepDataConfig) StepData() (train, heldOut []StepSample, err error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	r := rand.New(rand.NewPCG(c.Seed, 0x70726d))
	for len(train) < c.Train || len(heldOut) < c.HeldOut {
		first := 10 + r.IntN(90)
		s := c.solution(r, first)
		if first%c.HeldOutFirstMod == 0 {
			if len(heldOut) < c.HeldOut {
				heldOut = append(heldOut, s)
			}
		} else if len(train) < c.Train {
			train = append(train, s)
		}
	}
	return train, heldOut, nil
}

// solution draws a chain starting at first and writes its solution,
// corrupting one step of every other solution (drawn at random).
func (c StepDataConfig) solution(r *rand.Rand, first int) StepSample {
	n := c.MinSteps + r.IntN(c.MaxSteps-c.MinSteps+1)
	wrongAt := -1
	if r.IntN(2) == 1 {
		wrongAt = r.IntN(n)
	}
	var q, steps strings.Builder
	q.WriteString(strconv.Itoa(first))
	shown, truth := first, first // the running value written, and the right one
	var labels []string
	for i := range n {
		op, b := byte('+'), 1+r.IntN(9)
		if r.IntN(2) == 1 && shown-b >= 0 {
			op = '-'
		}
		fmt.Fprintf(&q, "%c%d", op, b)
		next := apply(shown, op, b)
		truth = apply(truth, op, b)
		if i == wrongAt {
			for {
				d := c.Deltas[r.IntN(len(c.Deltas))]
				if next+d >= 0 {
					next += d
					break
				}
			}
		}
		fmt.Fprintf(&steps, "\n%d%c%d=%d %s", shown, op, b, next, c.Tag)
		if wrongAt >= 0 && i >= wrongAt {
			labels = append(labels, c.Negative)
		} else {
			labels = append(labels, c.Positive)
		}
		shown = next
	}
	return StepSample{Input: q.String() + "=?" + steps.String(), Label: labels, Answer: strconv.Itoa(truth)}
}

func apply(a int, op byte, b int) int {
	if op == '-' {
		return a - b
	}
	return a + b
}

// WriteStepData writes samples as JSON Lines, one {"input", "label",
// "answer"} object per line: the format of `gorlhf train prm
// --data.input_key input --data.label_key label`.
func WriteStepData(path string, samples []StepSample) error {
	var b strings.Builder
	for _, s := range samples {
		line, err := json.Marshal(s)
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
