package main

import (
	"context"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/kto"
)

// runTrainKTO is `gorlhf train kto`.
func runTrainKTO(ctx context.Context, args []string) error {
	cfg := kto.DefaultConfig()
	f := ktoFlags(&cfg)
	if err := f.parse(args); err != nil {
		return err
	}
	setup := func(quiet bool) (train.Setup, error) { return trainSetup(cfg.Model, cfg.Data, quiet) }
	return runOffline(ctx, "kto", args, f, cfg.Train, setup, func(env train.Setup) (offlineTrainer, error) {
		ref, err := loadReference(cfg.Ref, cfg.Model)
		if err != nil {
			return nil, err
		}
		return kto.New(cfg, env, ref.Model)
	})
}

// ktoFlags binds every flag of `gorlhf train kto` to cfg; the names come
// from the config's flag tags (package cfgflag).
func ktoFlags(cfg *kto.Config) *trainFlags {
	f := newTrainFlags("kto").withDP()
	b := cfgflag.NewBinder(f.fs, cfg)
	b.Var(&cfg.Model, "policy to train: HF folder, llama2.c file, cached Hub id, or stories260K (embedded)")
	b.Var(&cfg.Ref, "frozen reference model (empty: the policy as loaded)")
	b.Var(&cfg.Loss.Beta, "β, the strength of the implicit KL to the reference")
	b.Var(&cfg.Loss.DesirableWeight, "weight λ_D of a desirable sample's loss")
	b.Var(&cfg.Loss.UndesirableWeight, "weight λ_U of an undesirable sample's loss")
	b.Var(&cfg.LabelKey, "field holding the label: true/1 desirable, false/0 undesirable")
	b.Var(&cfg.GradientCheckpointing, "recompute each of the policy's transformer block's activations in the backward pass instead of keeping them (less memory, about one more forward pass; same gradients)")
	registerData(b, &cfg.Data, true)
	registerTrain(b, &cfg.Train)
	registerTrainAliases(f)
	return f
}
