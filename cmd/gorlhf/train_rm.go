package main

import (
	"context"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/rm"
)

// runTrainRM is `gorlhf train rm`.
func runTrainRM(ctx context.Context, args []string) error {
	cfg := rm.DefaultConfig()
	f := rmFlags(&cfg)
	if err := f.parse(args); err != nil {
		return err
	}
	setup := func(quiet bool) (train.Setup, error) { return trainSetup(cfg.Model, cfg.Data, quiet) }
	return runOffline(ctx, "rm", args, f, cfg.Train, setup, func(env train.Setup) (offlineTrainer, error) {
		return rm.New(cfg, env)
	})
}

// rmFlags binds every flag of `gorlhf train rm` to cfg; the names come
// from the config's flag tags (package cfgflag).
func rmFlags(cfg *rm.Config) *trainFlags {
	f := newTrainFlags("rm").withDP()
	b := cfgflag.NewBinder(f.fs, cfg)
	b.Var(&cfg.Model, "backbone (a causal LM gets a new score head) or a reward model to keep training")
	b.Var(&cfg.Loss, "pairwise loss: sigmoid (Bradley–Terry) or logexp")
	b.Var(&cfg.MarginLoss, `subtract each pair's "margin" field inside the sigmoid loss`)
	b.Var(&cfg.GradientCheckpointing, "recompute each transformer block's activations in the backward pass instead of keeping them (less memory, about one more forward pass; same gradients)")
	registerData(b, &cfg.Data, false)
	registerTrain(b, &cfg.Train)
	registerTrainAliases(f)
	return f
}
