package ppo

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
)

// The reward section of Config (--reward.*): which sources score a
// sample, and their weighted mix.

// RewardConfig says where rewards come from: any of Model, RemoteURLs and
// Rule (gorlhf's built-in graders); with more than one, their weighted
// sum (Mix).
type RewardConfig struct {
	Model      string   `flag:"model_name_or_path"` // a reward model folder
	RemoteURLs []string `flag:"remote_url"`         // OpenRLHF-protocol servers (comma-separated)
	// Rule is a built-in grader (--reward.rule: math, exact, regex, length,
	// format) fed by the dataset's label (--data.label_key).
	Rule grade.RuleConfig
	// Normalize reports reward-model scores as (r − mean)/std with the
	// statistics stored in its config.json (--reward.normalize_enable).
	Normalize bool `flag:"normalize_enable"`
	// PRMAggregation is how the step scores of a process reward model
	// (a Model folder with prm.json, from gorlhf train prm) become the
	// reward (--reward.prm_aggregation): min, prod, mean or last.
	PRMAggregation string `flag:"prm_aggregation"`
	// Length is DAPO's overlong penalty and ProRL's stop-properly penalty
	// (--reward.overlong_buffer_len, --reward.overlong_penalty_factor,
	// --reward.stop_properly_penalty_coef); the zero value disables both.
	Length rl.LengthPenalty
	// BatchSize is how many sequences a local reward model scores per
	// forward pass; 0 means 16.
	BatchSize int `flag:"batch_size"`
	// Mix weighs the sources when several are set (--reward.mix, e.g.
	// "model=1,rule=0.5"): the reward is Σ wᵢ·rᵢ over the parts named
	// model, remote and rule; a part not listed weighs 1. Each part's
	// reward is logged as reward/<part>.
	Mix []reward.Weight `flag:"mix"`
	// ScoreFrom names the part whose score is the sample's score, the one
	// dynamic filtering compares (--reward.score_from, e.g. rule for a
	// 0/1 verifier next to a reward model); "" means the weighted sum.
	ScoreFrom string `flag:"score_from"`
}

// parts lists the names of the sources set (role.PartRule, PartRemote,
// PartModel), in the order they are built.
func (r RewardConfig) parts() []string { return r.spec(0).Parts() }

// spec is the reward role's part of the role spec; maxLen is the token
// budget of a sequence the reward model scores.
func (r RewardConfig) spec(maxLen int) role.RewardSpec {
	s := role.RewardSpec{Rule: r.Rule, RemoteURLs: r.RemoteURLs, Model: r.Model, Normalize: r.Normalize, PRMAggregation: r.PRMAggregation,
		BatchSize: r.BatchSize, MaxLen: maxLen, ScoreFrom: r.ScoreFrom}
	for _, w := range r.Mix {
		if s.Mix == nil {
			s.Mix = map[string]float64{}
		}
		s.Mix[w.Name] = w.Weight
	}
	return s
}

// validateMix checks that Mix and ScoreFrom name sources that are set.
func (c *Config) validateMix() error {
	r := c.Reward
	set := r.parts()
	var errs []error
	for _, w := range r.Mix {
		if !slices.Contains(set, w.Name) {
			errs = append(errs, fmt.Errorf("ppo: %s: %q is not a reward source that is set (set: %s)", c.flag(&c.Reward.Mix), w.Name, strings.Join(set, ", ")))
		}
	}
	if r.ScoreFrom != "" && !slices.Contains(set, r.ScoreFrom) {
		errs = append(errs, fmt.Errorf("ppo: %s: %q is not a reward source that is set (set: %s)", c.flag(&c.Reward.ScoreFrom), r.ScoreFrom, strings.Join(set, ", ")))
	}
	return errors.Join(errs...)
}

// sources counts the reward sources set.
func (r RewardConfig) sources() int { return len(r.parts()) }
