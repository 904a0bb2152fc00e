package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/sft"
)

// TestTrainHelperProcess is not a test: the tests below re-run the test
// binary with GORLHF_TRAIN_HELPER=1 to get a real process running
// `gorlhf train ...` (the same code main runs), which they can SIGKILL.
func TestTrainHelperProcess(t *testing.T) {
	if os.Getenv("GORLHF_TRAIN_HELPER") != "1" {
		t.Skip("helper process for the kill-and-resume test")
	}
	if err := helperFileSizeLimit(os.Getenv("GORLHF_TRAIN_FSIZE")); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runTrain(ctx, strings.Split(os.Getenv("GORLHF_TRAIN_ARGS"), "\x1f"))
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "gorlhf:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// trainProcess returns a command running `gorlhf train` with args.
func trainProcess(args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestTrainHelperProcess$")
	cmd.Env = append(os.Environ(), "GORLHF_TRAIN_HELPER=1", "GORLHF_TRAIN_ARGS="+strings.Join(args, "\x1f"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

// storiesData writes a small SFT dataset.
func storiesData(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	names := []string{"Lily", "Tom", "Sue", "Ben", "Max", "Anna", "Sam", "Mia"}
	things := []string{"a red ball", "a big dog", "a small cat", "a yummy cake"}
	for i := 0; i < 16; i++ {
		fmt.Fprintf(&b, "{\"question\": \"What did %s see?\", \"answer\": \"%s saw %s in the park.\"}\n",
			names[i%len(names)], names[i%len(names)], things[i%len(things)])
	}
	p := filepath.Join(t.TempDir(), "stories.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sftArgs(dataset, out string, extra ...string) []string {
	return append([]string{"sft", "--data.dataset", dataset, "--data.input_key", "question", "--data.output_key", "answer",
		"--data.max_len", "64", "--train.micro_batch_size", "2", "--train.batch_size", "4", "--train.max_steps", "40",
		"--adam.lr", "1e-3", "--ckpt.save_steps", "3", "--ckpt.max_num", "2", "--ckpt.output_dir", out,
		"--ckpt.path", filepath.Join(out, "ckpt"), "--threads", "2", "--quiet", "--sft.samples", "0"}, extra...)
}

// TestTrain_KillAndResume is the resume bar: a run killed with SIGKILL
// part-way and resumed from its last checkpoint ends with final weights
// identical, bit for bit, to those of an uninterrupted run.
func TestTrain_KillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three training processes")
	}
	ds := storiesData(t)
	a, b := t.TempDir(), t.TempDir()

	full, out := trainProcess(sftArgs(ds, a)...)
	if err := full.Run(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}

	killed, out := trainProcess(sftArgs(ds, b)...)
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	step := waitForCheckpoint(t, filepath.Join(b, "ckpt"), 6, 60*time.Second)
	time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // land anywhere: mid-step, mid-save
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := killed.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the run was not killed (it saw checkpoint %d): %v\n%s", step, err, out)
	}
	latest, err := train.LatestCheckpoint(filepath.Join(b, "ckpt"))
	if err != nil || latest == "" {
		t.Fatalf("no checkpoint survived the kill: %q, %v", latest, err)
	}
	t.Logf("killed after checkpoint %s", filepath.Base(latest))

	resumed, out := trainProcess(sftArgs(ds, b, "--ckpt.load_enable")...)
	if err := resumed.Run(); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, out)
	}
	log, _ := os.ReadFile(filepath.Join(b, "train.log"))
	if !bytes.Contains(log, []byte(`"msg":"resumed from checkpoint"`)) {
		t.Fatal("the second run did not resume")
	}
	assertSameWeights(t, filepath.Join(a, safetensors.SingleName), filepath.Join(b, safetensors.SingleName))

	// The metrics log of the resumed run reads as one run.
	ra, _ := train.ReadMetrics(filepath.Join(a, train.MetricsFile))
	rb, _ := train.ReadMetrics(filepath.Join(b, train.MetricsFile))
	if len(ra) != len(rb) || ra[len(ra)-1].Values["loss"] != rb[len(rb)-1].Values["loss"] {
		t.Fatalf("metrics: %d rows vs %d", len(ra), len(rb))
	}
}

// waitForCheckpoint polls root until a checkpoint of at least minStep exists.
func waitForCheckpoint(t *testing.T, root string, minStep int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if dir, _ := train.LatestCheckpoint(root); dir != "" {
			var step int
			if _, err := fmt.Sscanf(filepath.Base(dir), "global_step%d", &step); err == nil && step >= minStep {
				return step
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of step ≥ %d in %s after %v", minStep, root, timeout)
	return 0
}

// assertSameWeights compares every tensor of two safetensors files bit for bit.
func assertSameWeights(t *testing.T, pa, pb string) {
	t.Helper()
	fa, err := safetensors.Open(pa)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := safetensors.Open(pb)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	names := fa.Names()
	if len(names) != len(fb.Names()) {
		t.Fatalf("%d vs %d tensors", len(names), len(fb.Names()))
	}
	for _, n := range names {
		x, _, err1 := fa.Float32(n)
		y, _, err2 := fb.Float32(n)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", n, err1, err2)
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("%s differs at %d: %v vs %v", n, i, x[i], y[i])
			}
		}
	}
}

func TestApplyConfigFile(t *testing.T) {
	yaml := `# a run file
model:
  model_name_or_path: stories260K
data:
  dataset: a.jsonl
  max_len: 128
train.batch_size: 32
adam:
  betas: [0.8, 0.99]
actor.adam.lr: 0.001
ds.packing_samples: true
`
	path := filepath.Join(t.TempDir(), "run.yaml")
	os.WriteFile(path, []byte(yaml), 0o644)
	parse := func(args ...string) (sft.Config, error) {
		cfg := sft.DefaultConfig()
		f := newTrainFlags("sft")
		f.fs.SetOutput(&bytes.Buffer{})
		b := cfgflag.NewBinder(f.fs, &cfg)
		b.Var(&cfg.Model, "")
		registerData(b, &cfg.Data, true)
		registerTrain(b, &cfg.Train)
		registerTrainAliases(f)
		if err := f.fs.Parse(args); err != nil {
			return cfg, err
		}
		return cfg, applyConfigFile(f.fs, path, f.aliases)
	}
	cfg, err := parse("--data.max_len", "64", "--adam.lr", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	want := struct {
		maxLen, batch int
		lr, b1, b2    float64
		packing       bool
		dataset       string
	}{64, 32, 0.5, 0.8, 0.99, true, "a.jsonl"}
	got := want
	got.maxLen, got.batch, got.lr = cfg.Data.MaxLen, cfg.Train.BatchSize, cfg.Train.Optim.LR
	got.b1, got.b2, got.packing, got.dataset = cfg.Train.Optim.Adam.Beta1, cfg.Train.Optim.Adam.Beta2, cfg.Train.Packing, cfg.Data.Dataset
	if got != want {
		t.Fatalf("got %+v, want %+v (flags win over the file, the file over defaults)", got, want)
	}
	t.Run("Errors", func(t *testing.T) {
		for _, c := range []struct{ file, want string }{
			{"data:\n  nope: 1\n", `run.yaml:2: unknown setting "data.nope"`},
			{"train.batch_size: many\n", "run.yaml:1: train.batch_size"},
			{"adam.lr: 1\nactor.adam.lr: 2\n", `run.yaml:2: "actor.adam.lr" is already set on line 1`},
			{"- a\n- b\n", "want a mapping"},
			// Trailing text and second documents are errors, not dropped.
			{`{"train.batch_size": 8} xyz` + "\n", "run.yaml"},
			{`{"train.batch_size": 8}}` + "\n", "run.yaml"},
			{"{\"train.batch_size\": 8}\n{\"quiet\": true}\n", "run.yaml: after the settings"},
			{"train.batch_size: 8\n---\nquiet: true\n", "second document"},
		} {
			os.WriteFile(path, []byte(c.file), 0o644)
			if _, err := parse(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q: err %v, want %q", c.file, err, c.want)
			}
		}
	})
}

// TestTrain_CLI runs each trainer for a few steps in-process through the
// command line, with a config file, and checks the run folder.
func TestTrain_CLI(t *testing.T) {
	dir := t.TempDir()
	pairs := filepath.Join(dir, "pairs.jsonl")
	var b strings.Builder
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&b, "{\"chosen\": \"Lily was happy %d.\", \"rejected\": \"Lily was sad %d.\"}\n", i, i)
	}
	os.WriteFile(pairs, []byte(b.String()), 0o644)
	run := filepath.Join(dir, "run.yaml")
	os.WriteFile(run, []byte("train:\n  micro_batch_size: 2\n  batch_size: 4\n  max_steps: 2\ndata.max_len: 48\nthreads: 2\nquiet: true\n"), 0o644)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"sft", []string{"sft", "--data.dataset", storiesData(t), "--data.input_key", "question", "--data.output_key", "answer", "--sft.samples", "1", "--sft.sample_tokens", "4"}},
		{"rm", []string{"rm", "--data.dataset", pairs, "--eval.dataset", pairs, "--model.loss_type", "logexp"}},
		{"dpo", []string{"dpo", "--data.dataset", pairs, "--eval.dataset", pairs, "--model.ipo_enable"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name)
			args := append(c.args, "--config", run, "--ckpt.output_dir", out, "--ckpt.path", filepath.Join(out, "ckpt"))
			if err := runTrain(context.Background(), args); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"config.json", "model.safetensors", "tokenizer.bin", "metrics.jsonl", "loss.png", "train.log"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			rows, _ := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
			if len(rows) == 0 || rows[len(rows)-1].Step != 2 {
				t.Errorf("metrics rows %+v", rows)
			}
		})
	}
	t.Run("Errors", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.jsonl")
		os.WriteFile(bad, []byte("{\"q\": 1}\nnot json\n"), 0o644)
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"nope"}, "unknown trainer"},
			{[]string{"sft", "--quiet"}, "--data.dataset is required"},
			{[]string{"sft", "--quiet", "--data.dataset", bad, "--data.output_key", "a"}, bad + ":2"},
			{[]string{"rm", "--quiet", "--data.dataset", pairs, "--train.batch_size", "3", "--train.micro_batch_size", "2"}, "multiple of micro_batch_size"},
		} {
			err := runTrain(context.Background(), c.args)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: err %v, want %q", c.args, err, c.want)
			}
		}
	})
}
