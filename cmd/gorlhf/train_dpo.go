package main

import (
	"context"

	"github.com/gorlhf/gorlhf/internal/trainer/dpo"
)

// runTrainDPO is `gorlhf train dpo`.
func runTrainDPO(ctx context.Context, args []string) error {
	cfg := dpo.DefaultConfig()
	f := newTrainFlags("dpo")
	f.fs.StringVar(&cfg.Model, "model.model_name_or_path", cfg.Model, "policy to train: HF folder, llama2.c file, cached Hub id, or stories260K (embedded)")
	f.fs.StringVar(&cfg.Ref, "ref.model_name_or_path", cfg.Ref, "frozen reference model (empty: the policy as loaded)")
	f.fs.Float64Var(&cfg.Loss.Beta, "model.beta", cfg.Loss.Beta, "β, the strength of the implicit KL to the reference")
	f.fs.BoolVar(&cfg.Loss.IPO, "model.ipo_enable", cfg.Loss.IPO, "IPO loss (h − 1/(2β))² instead of DPO")
	f.fs.Float64Var(&cfg.Loss.LabelSmoothing, "model.label_smoothing", cfg.Loss.LabelSmoothing, "cDPO label smoothing ε (0 = DPO)")
	f.fs.Float64Var(&cfg.NLLCoef, "model.nll_loss_coef", cfg.NLLCoef, "weight of the NLL term on chosen responses (0 = off)")
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
	refName := cfg.Ref
	if refName == "" {
		refName = cfg.Model
	}
	ref, err := loadModel(refName)
	if err != nil {
		return err
	}
	t, err := dpo.New(cfg, env, ref.Model)
	if err != nil {
		return err
	}
	return t.Run(ctx)
}
