package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/kd"
	"github.com/gorlhf/gorlhf/internal/trainer/kto"
)

// TestKTOKDFlags_EveryTaggedFieldBound: every config field with a flag tag
// is a flag of train kto and train kd (the preference-pair keys aside).
func TestKTOKDFlags_EveryTaggedFieldBound(t *testing.T) {
	pairOnly := []string{"data.prompt_key", "data.chosen_key", "data.rejected_key"}
	ktoCfg, kdCfg := kto.DefaultConfig(), kd.DefaultConfig()
	for _, c := range []struct {
		name string
		f    *trainFlags
		cfg  any
	}{{"kto", ktoFlags(&ktoCfg), &ktoCfg}, {"kd", kdFlags(&kdCfg), &kdCfg}} {
		for _, n := range cfgflag.Names(c.cfg) {
			if bound := c.f.fs.Lookup(n) != nil; bound == slices.Contains(pairOnly, n) {
				t.Errorf("train %s: tagged flag --%s bound=%v", c.name, n, bound)
			}
		}
	}
}

// TestTrainKTOKD_CLI runs train kto and train kd for two steps through the
// command line, then the errors for a one-class KTO set and a missing
// teacher.
func TestTrainKTOKD_CLI(t *testing.T) {
	dir := t.TempDir()
	unpaired := filepath.Join(dir, "kto.jsonl")
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, "{\"input\": \"Lily went out %d.\", \"output\": \" She was happy.\", \"label\": true}\n", i)
		fmt.Fprintf(&b, "{\"input\": \"Tom went out %d.\", \"output\": \" He was sad.\", \"label\": false}\n", i)
	}
	os.WriteFile(unpaired, []byte(b.String()), 0o644)
	oneClass := filepath.Join(dir, "one.jsonl")
	os.WriteFile(oneClass, []byte(strings.ReplaceAll(b.String(), "false", "true")), 0o644)
	cfg := filepath.Join(dir, "run.yaml")
	os.WriteFile(cfg, []byte("train:\n  micro_batch_size: 2\n  batch_size: 4\n  max_steps: 2\ndata.max_len: 48\nthreads: 2\nquiet: true\n"), 0o644)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"kto", []string{"kto", "--data.dataset", unpaired, "--eval.dataset", unpaired, "--data.output_key", "output", "--model.desirable_loss_weight", "1.2"}},
		{"kd", []string{"kd", "--data.dataset", unpaired, "--eval.dataset", unpaired, "--teacher.model_name_or_path", "stories260K", "--model.kd_coef", "0.5"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name)
			args := append(c.args, "--config", cfg, "--ckpt.output_dir", out)
			if err := runTrain(context.Background(), args); err != nil {
				t.Fatal(err)
			}
			rows, _ := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
			if len(rows) == 0 || rows[len(rows)-1].Step != 2 {
				t.Errorf("metrics rows %+v", rows)
			}
			if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil {
				t.Error(err)
			}
		})
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"kto", "--quiet", "--data.dataset", oneClass, "--data.output_key", "output"},
			[]string{oneClass, `field "label" has no undesirable (false/0) sample`}},
		{[]string{"kto", "--quiet", "--data.dataset", unpaired}, []string{"--data.output_key"}},
		{[]string{"kd", "--quiet", "--data.dataset", unpaired}, []string{"--teacher.model_name_or_path is required"}},
	} {
		err := runTrain(context.Background(), append(c.args, "--ckpt.output_dir", filepath.Join(dir, "bad")))
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: err %v, want %q", c.args, err, w)
			}
		}
	}
}
