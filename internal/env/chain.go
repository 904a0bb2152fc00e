package env

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
)

// ChainConfig configures the chained-addition environment.
type ChainConfig struct {
	// Steps is the number of answers per episode (the dataset's problem
	// and Steps−1 follow-ups).
	Steps int
	// MaxAdd bounds the number a follow-up adds (0…MaxAdd).
	MaxAdd int
	// Cap bounds every result: a follow-up never adds more than Cap minus
	// the running value, so results stay in the range a model was taught.
	Cap int
	// Seed and the prompt decide the follow-ups.
	Seed uint64
}

// DefaultChainConfig is three answers, adding 0…9, results ≤ 98: the
// range of the arithmetic demo's SFT data (two-digit results).
func DefaultChainConfig() ChainConfig { return ChainConfig{Steps: 3, MaxAdd: 9, Cap: 98, Seed: 1} }

// Validate checks the configuration.
func (c ChainConfig) Validate() error {
	switch {
	case c.Steps < 1:
		return fmt.Errorf("env: chain: steps %d must be ≥ 1", c.Steps)
	case c.MaxAdd < 0 || c.MaxAdd > 1_000_000:
		return fmt.Errorf("env: chain: max add %d must be in [0, 1000000]", c.MaxAdd)
	case c.Cap < 0 || c.Cap > 1_000_000_000:
		return fmt.Errorf("env: chain: cap %d must be in [0, 1e9]", c.Cap)
	}
	return nil
}

// Chain continues a dataset problem "a+b=" (or "a-b=") over several turns:
// the first action answers the prompt itself; each later turn restates the
// right result so far and adds a number to it ("\n27+5=", without the
// newline when the action ended with one), in the same format, so a model taught single problems can play, and what the turns
// add is the conversation before each question. Each exact answer earns
// 1/Steps (an episode's return is the fraction answered right); after a
// wrong one the next question restates the right value, so one slip costs
// one step. Answers are read as the trimmed action, which must be the
// number and nothing else.
//
// The follow-ups depend only on the configuration's seed and the prompt,
// never on the policy's actions.
type Chain struct {
	cfg   ChainConfig
	value int64   // the right result of the question being answered
	adds  []int64 // the follow-ups still to ask
	step  int     // answers given; −1 before Reset
}

// NewChain returns an environment; call Reset before Step.
func NewChain(cfg ChainConfig) (*Chain, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Chain{cfg: cfg, step: -1}, nil
}

// ChainFactory returns a constructor of fresh Chain environments.
func ChainFactory(cfg ChainConfig) (Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return func() Env { c, _ := NewChain(cfg); return c }, nil
}

// Reset implements Env: the observation is the prompt, which must be a
// problem "a+b=" or "a-b=" with non-negative integers.
func (c *Chain) Reset(_ context.Context, prompt, _ string) (string, error) {
	v, err := parseProblem(prompt)
	if err != nil {
		return "", err
	}
	h := fnv.New64a()
	h.Write([]byte(prompt))
	r := rand.New(rand.NewPCG(c.cfg.Seed, h.Sum64()))
	c.value, c.adds, c.step = v, c.adds[:0], 0
	run := v
	for range c.cfg.Steps - 1 {
		hi := min(int64(c.cfg.MaxAdd), max(int64(c.cfg.Cap)-run, 0))
		b := r.Int64N(hi + 1)
		c.adds = append(c.adds, b)
		run += b
	}
	return prompt, nil
}

// parseProblem returns the value of "a+b=" or "a-b=".
func parseProblem(p string) (int64, error) {
	s := strings.TrimSpace(p)
	body, ok := strings.CutSuffix(s, "=")
	if i := strings.IndexAny(body, "+-"); ok && i > 0 {
		a, errA := strconv.ParseInt(body[:i], 10, 64)
		b, errB := strconv.ParseInt(body[i+1:], 10, 64)
		if errA == nil && errB == nil && a >= 0 && b >= 0 {
			if body[i] == '-' {
				return a - b, nil
			}
			return a + b, nil
		}
	}
	return 0, fmt.Errorf("chain: prompt %q is not a problem like \"23+4=\"", p)
}

// Step implements Env.
func (c *Chain) Step(_ context.Context, action string) (string, float64, bool, error) {
	if c.step < 0 {
		return "", 0, false, errors.New("chain: Step before Reset")
	}
	if c.step >= c.cfg.Steps {
		return "", 0, false, errors.New("chain: Step after the episode ended")
	}
	want := strconv.FormatInt(c.value, 10)
	r := 0.0
	if strings.TrimSpace(action) == want {
		r = 1 / float64(c.cfg.Steps)
	}
	c.step++
	if c.step == c.cfg.Steps {
		return "", r, true, nil
	}
	b := c.adds[c.step-1]
	c.value += b
	sep := "\n"
	if strings.HasSuffix(action, "\n") {
		sep = "" // the action ended its line (a "\n" stop string)
	}
	return fmt.Sprintf("%s%s+%d=", sep, want, b), r, false, nil
}
