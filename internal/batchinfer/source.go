package batchinfer

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/reward/prmodel"
	"github.com/gorlhf/gorlhf/internal/reward/rmodel"
)

// SourceOptions say how eval_task rm scores.
type SourceOptions struct {
	// Model is a reward model (*ForSequenceClassification) or a process
	// reward model (a causal LM folder with prm.json); "" with a Rule.
	Model string
	// Rule is a built-in grader (Kind "" = none), fed by the records'
	// labels.
	Rule        grade.RuleConfig
	Load        load.Options
	MaxLen      int                 // tokens per scored sequence
	BatchSize   int                 // sequences per forward pass
	Aggregation prmodel.Aggregation // how a PRM's step scores become the reward
}

// OpenSource returns the reward source of o: the rule, the reward model
// (its scores normalised with the mean and std stored in its config.json,
// as OpenRLHF's batch_inference loads it with normalize_reward), or the
// process reward model.
func OpenSource(o SourceOptions) (reward.Source, error) {
	switch {
	case o.Rule.Kind != "" && o.Model != "":
		return nil, fmt.Errorf("batchinfer: a reward model (%s) or a rule (%s), not both", o.Model, o.Rule.Kind)
	case o.Rule.Kind != "":
		return grade.NewRule(o.Rule)
	case o.Model == "":
		return nil, fmt.Errorf("batchinfer: eval_task rm needs a reward model (--pretrain) or a rule (--rule)")
	}
	b, err := load.Open(o.Model, load.OpenOptions{Load: o.Load})
	if err != nil {
		return nil, fmt.Errorf("batchinfer: %w", err)
	}
	if b.Score != nil {
		c := rmodel.DefaultConfig()
		c.Model, c.Tok, c.Normalize = b.Score, b.Tok, true
		c.MaxLen, c.BatchSize = max(o.MaxLen, 2), max(o.BatchSize, 1)
		return rmodel.New(c)
	}
	if !prmodel.IsPRM(b.Path) {
		return nil, fmt.Errorf("batchinfer: %s is a %s: want a reward model (*ForSequenceClassification) or a process reward model (a folder with %s)", o.Model, b.Arch, prmodel.SpecFile)
	}
	spec, err := prmodel.ReadSpec(b.Path)
	if err != nil {
		return nil, err
	}
	c := prmodel.DefaultConfig()
	c.Model, c.Tok, c.Spec = b.Model, b.Tok, spec
	c.MaxLen, c.BatchSize = max(o.MaxLen, 2), max(o.BatchSize, 1)
	if o.Aggregation != "" {
		c.Aggregation = o.Aggregation
	}
	return prmodel.New(c)
}
