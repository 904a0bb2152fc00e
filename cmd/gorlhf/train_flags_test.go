package main

import (
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/trainer/dpo"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
	"github.com/gorlhf/gorlhf/internal/trainer/rm"
	"github.com/gorlhf/gorlhf/internal/trainer/sft"
)

// TestTrainFlags_EveryTaggedFieldBound: every config field with a flag tag
// is a flag of its trainer (so a tag cannot name a flag that does not
// exist), except the dataset keys the other kind of trainer reads.
func TestTrainFlags_EveryTaggedFieldBound(t *testing.T) {
	sftOnly := []string{"data.input_key", "data.output_key", "data.multiturn"}
	pairOnly := []string{"data.prompt_key", "data.chosen_key", "data.rejected_key"}
	ppoCfg, sftCfg, rmCfg, dpoCfg := ppo.DefaultConfig(), sft.DefaultConfig(), rm.DefaultConfig(), dpo.DefaultConfig()
	ppoFlags := newTrainFlags("ppo")
	registerPPO(ppoFlags.fs, &ppoCfg)
	for _, c := range []struct {
		name   string
		f      *trainFlags
		cfg    any
		absent []string
	}{
		{"ppo", ppoFlags, &ppoCfg, nil},
		{"sft", sftFlags(&sftCfg), &sftCfg, pairOnly},
		{"rm", rmFlags(&rmCfg), &rmCfg, sftOnly},
		{"dpo", dpoFlags(&dpoCfg), &dpoCfg, sftOnly},
	} {
		names := cfgflag.Names(c.cfg)
		if len(names) < 20 {
			t.Fatalf("%s: only %d tagged fields: %v", c.name, len(names), names)
		}
		for _, n := range names {
			if bound := c.f.fs.Lookup(n) != nil; bound == slices.Contains(c.absent, n) {
				t.Errorf("train %s: tagged flag --%s bound=%v", c.name, n, bound)
			}
		}
	}
}
