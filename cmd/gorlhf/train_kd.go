package main

import (
	"context"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/kd"
)

// runTrainKD is `gorlhf train kd`.
func runTrainKD(ctx context.Context, args []string) error {
	cfg := kd.DefaultConfig()
	f := kdFlags(&cfg)
	if err := f.parse(args); err != nil {
		return err
	}
	setup := func(quiet bool) (train.Setup, error) { return trainSetup(cfg.Model, cfg.Data, quiet) }
	return runOffline(ctx, "kd", args, f, cfg.Train, setup, func(env train.Setup) (offlineTrainer, error) {
		if err := cfg.Validate(); err != nil {
			return nil, err // before loading the teacher
		}
		teacher, err := load.Open(cfg.Teacher, load.OpenOptions{Load: loadOptions()})
		if err != nil {
			return nil, err
		}
		return kd.New(cfg, env, teacher)
	})
}

// kdFlags binds every flag of `gorlhf train kd` to cfg; the names come
// from the config's flag tags (package cfgflag).
func kdFlags(cfg *kd.Config) *trainFlags {
	f := newTrainFlags("kd").withDP()
	b := cfgflag.NewBinder(f.fs, cfg)
	b.Var(&cfg.Model, "student to train: HF folder, llama2.c file, cached Hub id, or stories260K (embedded)")
	b.Var(&cfg.Teacher, "frozen teacher model (required); it must use the student's tokenizer")
	b.Var(&cfg.KDCoef, "loss mix (1 − c)·SFT + c·distillation (0 = plain SFT, 1 = distillation only)")
	b.Var(&cfg.PretrainMode, "loss on every token of "+cfgflag.Flag(cfg, &cfg.Data.InputKey)+" (continued pre-training)")
	b.Var(&cfg.GradientCheckpointing, "recompute each of the student's transformer block's activations in the backward pass instead of keeping them (less memory, about one more forward pass; same gradients)")
	registerData(b, &cfg.Data, true)
	registerTrain(b, &cfg.Train)
	registerTrainAliases(f)
	return f
}
