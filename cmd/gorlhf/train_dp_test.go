package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective/collectivetest"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
)

// dpStories writes 16 prompt/response records for the data-parallel runs.
func dpStories(t *testing.T) string {
	t.Helper()
	names := []string{"Lily", "Tom", "Sue", "Ben"}
	var b strings.Builder
	for i := range 16 {
		n := names[i%len(names)]
		fmt.Fprintf(&b, "{\"input\": \"What did %s find?\", \"output\": \"%s found %d shells by the sea and was happy.\"}\n", n, n, i+1)
	}
	p := filepath.Join(t.TempDir(), "stories.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sftDPArgs is a small `train sft` command line (after `train`): 4 steps
// of 4 one-sample micro-batches, a pinned kernel and thread count so
// that every process computes alike.
func sftDPArgs(data, out string, extra ...string) []string {
	return append([]string{"sft", "--quiet", "--gemm", "go", "--threads", "1", "--data.dataset", data, "--data.output_key", "output",
		"--data.max_len", "64", "--train.batch_size", "4", "--train.micro_batch_size", "1", "--train.max_steps", "4",
		"--adam.lr", "3e-3", "--max_norm", "0.5", "--sft.samples", "0", "--ckpt.output_dir", out}, extra...)
}

func trainedParams(t *testing.T, dir string) nn.Params {
	t.Helper()
	l, err := load.Load(dir, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Params()
}

// TestTrainDP_Local runs `train sft --launcher local` with 2 real rank
// processes at ZeRO stage 0, and at stage 3 with gradient checkpointing:
// the two final models are byte-identical, and equal the one-process run
// within 1e-6; a run
// stopped at step 2 on 2 ranks at stage 2 resumes on 4 ranks at stage 3
// and ends as the uninterrupted 4-rank run does (within 1e-6).
func TestTrainDP_Local(t *testing.T) {
	useTestBinary(t)
	data, root := dpStories(t), t.TempDir()
	run := func(name string, extra ...string) string {
		t.Helper()
		out := filepath.Join(root, name)
		if err := runTrain(context.Background(), sftDPArgs(data, out, extra...)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return out
	}
	one := run("one")
	s0 := run("local-s0", "--launcher", "local", "--model.num_workers_per_node", "2")
	s3 := run("local-s3", "--launcher", "local", "--model.num_workers_per_node", "2", "--ds.zero_stage", "3", "--model.gradient_checkpointing_enable")
	a, err := os.ReadFile(filepath.Join(s0, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s3, "model.safetensors")); err != nil || string(a) != string(b) {
		t.Fatalf("stage 3's model (with gradient checkpointing) differs from stage 0's (%v)", err)
	}
	d := collectivetest.Compare(t, trainedParams(t, s0), trainedParams(t, one))
	t.Logf("2 processes vs one: worst relative difference %.3g (%s)", d.Rel, d.Name)
	if d.Rel > 1e-6 {
		t.Fatalf("%s differs from the one-process run by %.3g", d.Name, d.Rel)
	}
	if _, err := os.Stat(filepath.Join(s3, "workers", "worker-1.log")); err != nil {
		t.Errorf("rank 1's log: %v", err)
	}

	// Save on 2 ranks at stage 2, resume on 4 at stage 3.
	ckpt := filepath.Join(root, "ckpt")
	err = runTrain(context.Background(), sftDPArgs(data, filepath.Join(root, "first"), "--launcher", "local", "--model.num_workers_per_node", "2",
		"--ds.zero_stage", "2", "--ckpt.path", ckpt, "--ckpt.save_steps", "2", "--train.stop_at_step", "2"))
	if err != nil {
		t.Fatal(err)
	}
	four := []string{"--launcher", "local", "--model.num_workers_per_node", "4", "--ds.zero_stage", "3"}
	want := run("four", four...)
	got := run("resumed", append(four, "--ckpt.path", ckpt, "--ckpt.load_enable")...)
	d = collectivetest.Compare(t, trainedParams(t, got), trainedParams(t, want))
	t.Logf("resumed on 4 ranks vs uninterrupted: worst relative difference %.3g (%s)", d.Rel, d.Name)
	if d.Rel > 1e-6 {
		t.Fatalf("%s differs by %.3g", d.Name, d.Rel)
	}
}

// TestTrainDP_Refusals: rank counts and launchers that cannot work are
// refused before anything starts, naming the flags.
func TestTrainDP_Refusals(t *testing.T) {
	useTestBinary(t)
	data, out := dpStories(t), filepath.Join(t.TempDir(), "out")
	cases := []struct {
		extra []string
		want  string
	}{
		{[]string{"--model.num_workers_per_node", "2"}, "needs several processes: use --launcher local or slurm"},
		{[]string{"--launcher", "local", "--model.num_workers_per_node", "3"}, "do not split evenly over 3 data-parallel ranks"},
		{[]string{"--launcher", "k8s"}, "--launcher k8s"},
		{[]string{"--ds.zero_stage", "4"}, "ds.zero_stage must be 0, 1, 2 or 3"},
		{[]string{"--launcher", "slurm", "--model.num_workers_per_node", "2"}, ""},
	}
	for _, c := range cases {
		err := runTrain(context.Background(), sftDPArgs(data, out, c.extra...))
		if c.want == "" { // no Slurm variables: the launcher started 1 process
			if err == nil || !strings.Contains(err.Error(), "started 1 processes") {
				t.Errorf("%v: %v", c.extra, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.extra, err, c.want)
		}
	}
}
