package main

import (
	"context"

	"github.com/gorlhf/gorlhf/internal/trainer/rm"
)

// runTrainRM is `gorlhf train rm`.
func runTrainRM(ctx context.Context, args []string) error {
	cfg := rm.DefaultConfig()
	f := newTrainFlags("rm")
	f.fs.StringVar(&cfg.Model, "model.model_name_or_path", cfg.Model, "backbone (a causal LM gets a new score head) or a reward model to keep training")
	f.fs.Var(&cfg.Loss, "model.loss_type", "pairwise loss: sigmoid (Bradley–Terry) or logexp")
	f.fs.BoolVar(&cfg.MarginLoss, "model.margin_loss_enable", cfg.MarginLoss, `subtract each pair's "margin" field inside the sigmoid loss`)
	registerData(f.fs, &cfg.Data, false)
	registerTrain(f.fs, &cfg.Train)
	registerTrainAliases(f)
	if err := f.parse(args); err != nil {
		return err
	}
	env, err := trainSetup(cfg.Model, cfg.Data, f.quiet)
	if err != nil {
		return err
	}
	t, err := rm.New(cfg, env)
	if err != nil {
		return err
	}
	return t.Run(ctx)
}
