package main

import (
	"context"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/dpo"
)

// runTrainDPO is `gorlhf train dpo`.
func runTrainDPO(ctx context.Context, args []string) error {
	cfg := dpo.DefaultConfig()
	f := dpoFlags(&cfg)
	if err := f.parse(args); err != nil {
		return err
	}
	setup := func(quiet bool) (train.Setup, error) { return trainSetup(cfg.Model, cfg.Data, quiet) }
	return runOffline(ctx, "dpo", args, f, cfg.Train, setup, func(env train.Setup) (offlineTrainer, error) {
		ref, err := loadReference(cfg.Ref, cfg.Model)
		if err != nil {
			return nil, err
		}
		return dpo.New(cfg, env, ref.Model)
	})
}

// dpoFlags binds every flag of `gorlhf train dpo` to cfg; the names come
// from the config's flag tags (package cfgflag).
func dpoFlags(cfg *dpo.Config) *trainFlags {
	f := newTrainFlags("dpo").withDP()
	b := cfgflag.NewBinder(f.fs, cfg)
	b.Var(&cfg.Model, "policy to train: HF folder, llama2.c file, cached Hub id, or stories260K (embedded)")
	b.Var(&cfg.Ref, "frozen reference model (empty: the policy as loaded)")
	b.Var(&cfg.Loss.Beta, "β, the strength of the implicit KL to the reference")
	b.Var(&cfg.Loss.IPO, "IPO loss (h − 1/(2β))² instead of DPO")
	b.Var(&cfg.Loss.LabelSmoothing, "cDPO label smoothing ε (0 = DPO)")
	b.Var(&cfg.NLLCoef, "weight of the NLL term on chosen responses (0 = off)")
	b.Var(&cfg.GradientCheckpointing, "recompute each of the policy's transformer block's activations in the backward pass instead of keeping them (less memory, about one more forward pass; same gradients)")
	registerData(b, &cfg.Data, false)
	registerTrain(b, &cfg.Train)
	registerTrainAliases(f)
	return f
}
