package main

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"

	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/model/load"
)

// mergeLoRA merges the PEFT adapter folder dir into the loaded base l
// (convert --merge-lora): W += (α/r)·B·A for every adapted map, and the
// modules the adapter saves whole copied in. An adapter that saves a
// score head (a reward model or critic trained with LoRA) turns a causal
// LM base into its score model first. A base that does not match is an
// error naming the tensor and both shapes, before anything is changed.
func mergeLoRA(l *load.Loaded, dir string) error {
	f, err := lora.Read(dir)
	if err != nil {
		return err
	}
	if _, ok := f.Saved["score.weight"]; ok && l.Score == nil {
		sm, cfg, err := load.ScoreModel(l, l.Model, rand.New(rand.NewPCG(0, 0)))
		if err != nil {
			return err
		}
		l.Score, l.Config = sm, cfg
	}
	if err := f.Merge(l.Module()); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "convert: merged %d LoRA adapters (r %d, alpha %g, %s) from %s\n",
		len(f.Modules), f.Config.R, f.Config.LoraAlpha, f.Config.TaskType, dir)
	if len(f.Saved) > 0 {
		fmt.Fprintf(os.Stderr, "convert: and the modules saved whole: %v\n", slices.Sorted(maps.Keys(f.Saved)))
	}
	return nil
}
