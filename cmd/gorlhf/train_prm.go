package main

import (
	"context"
	"strings"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/reward/prmodel"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/prm"
)

// runTrainPRM is `gorlhf train prm`.
func runTrainPRM(ctx context.Context, args []string) error {
	cfg := prm.DefaultConfig()
	f := prmFlags(&cfg)
	if err := f.parse(args); err != nil {
		return err
	}
	setup := func(quiet bool) (train.Setup, error) { return trainSetup(cfg.Model, cfg.Data, quiet) }
	return runOffline(ctx, "prm", args, f, cfg.Train, setup, func(env train.Setup) (offlineTrainer, error) {
		return prm.New(cfg, env)
	})
}

// prmFlags binds every flag of `gorlhf train prm` to cfg; the names come
// from the config's flag tags (package cfgflag).
func prmFlags(cfg *prm.Config) *trainFlags {
	f := newTrainFlags("prm").withDP()
	b := cfgflag.NewBinder(f.fs, cfg)
	b.Var(&cfg.Model, "causal LM to train as the PRM: HF folder, llama2.c file, cached Hub id, or stories260K (embedded)")
	b.Var(&cfg.PlaceholderToken, `the step tag that ends every step of an input, one token (e.g. "ки"; "@" for stories260K)`)
	b.Value(&cfg.RewardTokens, tokenList{&cfg.RewardTokens}, `reward tokens, positive first: "+,-" or "+ -" (empty: hard labels over the whole vocabulary)`)
	b.Var(&cfg.LabelKey, "field holding one label per step tag: reward tokens, or the positive token's probability (soft labels)")
	b.Var(&cfg.GradientCheckpointing, "recompute each transformer block's activations in the backward pass instead of keeping them (less memory, about one more forward pass; same gradients)")
	b.Var(&cfg.Data.Dataset, "training data: comma-separated .jsonl, .jsonl.gz, .json or .parquet files")
	b.Var(&cfg.Data.MaxSamples, "read at most this many records (0 = all)")
	b.Var(&cfg.Data.MaxLen, "max tokens per input; later tokens and their step tags are cut")
	b.Var(&cfg.Data.InputKey, "field holding the step-tagged text")
	registerTrain(b, &cfg.Train)
	registerTrainAliases(f)
	return f
}

// tokenList is the flag.Value of a list of token strings: comma-separated,
// or space-separated when it holds no comma (OpenRLHF's nargs="*" list
// written as one argument).
type tokenList struct{ p *[]string }

func (l tokenList) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l tokenList) Set(s string) error {
	sep := func(r rune) bool { return r == ',' }
	if !strings.Contains(s, ",") {
		sep = func(r rune) bool { return r == ' ' }
	}
	*l.p = strings.FieldsFunc(s, sep)
	return nil
}

// prmAggregation is the flag.Value of --reward.prm_aggregation: a name
// prmodel.Aggregation accepts, checked when it is set.
type prmAggregation struct{ p *string }

func (a prmAggregation) String() string {
	if a.p == nil {
		return ""
	}
	return *a.p
}

func (a prmAggregation) Set(s string) error {
	if err := prmodel.Aggregation(s).Validate(); err != nil {
		return err
	}
	*a.p = s
	return nil
}
