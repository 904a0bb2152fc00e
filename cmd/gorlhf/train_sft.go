package main

import (
	"context"

	"github.com/gorlhf/gorlhf/internal/trainer/sft"
)

// runTrainSFT is `gorlhf train sft`.
func runTrainSFT(ctx context.Context, args []string) error {
	cfg := sft.DefaultConfig()
	f := newTrainFlags("sft")
	f.fs.StringVar(&cfg.Model, "model.model_name_or_path", cfg.Model, "model to fine-tune: HF folder, llama2.c file, cached Hub id, or stories260K (embedded)")
	f.fs.BoolVar(&cfg.PretrainMode, "model.pretrain_mode_enable", cfg.PretrainMode, "loss on every token of --data.input_key (continued pre-training)")
	f.fs.IntVar(&cfg.Samples, "sft.samples", cfg.Samples, "greedy completions of this many eval prompts at the end (samples.txt)")
	f.fs.IntVar(&cfg.SampleTokens, "sft.sample_tokens", cfg.SampleTokens, "max new tokens per sample")
	registerData(f.fs, &cfg.Data, true)
	registerTrain(f.fs, &cfg.Train)
	registerTrainAliases(f)
	if err := f.parse(args); err != nil {
		return err
	}
	env, err := trainSetup(cfg.Model, cfg.Data, f.quiet)
	if err != nil {
		return err
	}
	t, err := sft.New(cfg, env)
	if err != nil {
		return err
	}
	return t.Run(ctx)
}
