package main

import (
	"regexp"
	"slices"
	"strings"
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

// TestTrainFlags_MessagesNameRealFlags: the flags that validation messages
// name are flags of the command.
func TestTrainFlags_MessagesNameRealFlags(t *testing.T) {
	flagRE := regexp.MustCompile(`--[a-z_.]+`)
	check := func(name string, f *trainFlags, err error, want int) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: a broken config validated", name)
		}
		named := flagRE.FindAllString(err.Error(), -1)
		if len(named) < want {
			t.Fatalf("%s: %q names %d flags, want ≥ %d", name, err, len(named), want)
		}
		for _, n := range named {
			if f.fs.Lookup(strings.TrimPrefix(n, "--")) == nil {
				t.Errorf("%s: message names %s, which is not a flag: %v", name, n, err)
			}
		}
	}
	s := sft.DefaultConfig()
	sf := sftFlags(&s)
	s.Model, s.Data.Multiturn = "", true
	check("sft", sf, s.Validate(), 3)

	r := rm.DefaultConfig()
	rf := rmFlags(&r)
	r.Model, r.Loss = "", "hinge"
	check("rm", rf, r.Validate(), 3)

	d := dpo.DefaultConfig()
	df := dpoFlags(&d)
	d.Model, d.Loss.Beta, d.Loss.LabelSmoothing, d.NLLCoef = "", 0, 0.7, -1
	check("dpo", df, d.Validate(), 5)

	p := ppo.DefaultConfig()
	pf := newTrainFlags("ppo")
	registerPPO(pf.fs, &p)
	p.Actor.Model, p.Critic.FreezingSteps, p.Actor.EntropyCoef, p.Rollout.Stop = "", -1, -1, []string{""}
	p.Reward.Normalize, p.Train.MaxEpochs, p.Ckpt.SaveSteps, p.Data.MaxLen = true, 0, 0, 1
	p.Eval.Dataset, p.Eval.NSamples, p.Algo.DynamicFilter.Enable = "e", 0, true
	check("ppo", pf, p.Validate(), 20)
}
