package main

import (
	"context"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/sft"
)

// runTrainSFT is `gorlhf train sft`.
func runTrainSFT(ctx context.Context, args []string) error {
	cfg := sft.DefaultConfig()
	f := sftFlags(&cfg)
	if err := f.parse(args); err != nil {
		return err
	}
	setup := func(quiet bool) (train.Setup, error) { return trainSetup(cfg.Model, cfg.Data, quiet) }
	return runOffline(ctx, "sft", args, f, cfg.Train, setup, func(env train.Setup) (offlineTrainer, error) {
		return sft.New(cfg, env)
	})
}

// sftFlags binds every flag of `gorlhf train sft` to cfg; the names come
// from the config's flag tags (package cfgflag).
func sftFlags(cfg *sft.Config) *trainFlags {
	f := newTrainFlags("sft").withDP()
	b := cfgflag.NewBinder(f.fs, cfg)
	b.Var(&cfg.Model, "model to fine-tune: HF folder, llama2.c file, cached Hub id, or stories260K (embedded)")
	b.Var(&cfg.GradientCheckpointing, "recompute each transformer block's activations in the backward pass instead of keeping them (less memory, about one more forward pass; same gradients)")
	b.Var(&cfg.PretrainMode, "loss on every token of "+cfgflag.Flag(cfg, &cfg.Data.InputKey)+" (continued pre-training)")
	b.Var(&cfg.Samples, "greedy completions of this many eval prompts at the end (samples.txt)")
	b.Var(&cfg.SampleTokens, "max new tokens per sample")
	b.Var(&cfg.Reward.Template, "conditional SFT: rewrite each prompt with its score through this template, \"{input}\" and \"{reward}\" (two decimals) its fields (OpenRLHF's default: \""+data.DefaultRewardTemplate+"\"; empty: off)")
	b.Var(&cfg.Reward.RewardKey, "conditional SFT: numeric field holding each record's score")
	b.Var(&cfg.Reward.Normalize, "conditional SFT: z-normalise the scores over the dataset first")
	registerData(b, &cfg.Data, true)
	registerTrain(b, &cfg.Train)
	registerTrainAliases(f)
	return f
}
