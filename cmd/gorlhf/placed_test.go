package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/gemm"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/train"
)

// asBinaryEnv makes the test binary play the gorlhf binary (TestMain):
// the local launcher's workers, and drivers the fault tests kill, are
// this test binary run as `gorlhf ...`.
const asBinaryEnv = "GORLHF_AS_BINARY"

// useTestBinary makes the local launcher start its workers as real
// processes of this test binary, which TestMain turns into gorlhf.
func useTestBinary(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(asBinaryEnv, "1") // the supervisor hands workers the driver's environment
	old := workerExe
	workerExe = func() (string, []string, error) { return exe, nil, nil }
	t.Cleanup(func() { workerExe = old })
}

// placedPrompts writes 12 story prompts.
func placedPrompts(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	names := []string{"Lily", "Tom", "Sue", "Ben", "Max", "Anna"}
	for i := range 12 {
		fmt.Fprintf(&b, "{\"input\": \"Once upon a time, %s found %d shells.\"}\n", names[i%len(names)], i+1)
	}
	p := filepath.Join(t.TempDir(), "prompts.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ppoArgs is a small `train ppo` command line (after `train`) on the
// embedded stories260K: one thread, a fixed kernel, a length reward,
// two iterations; extra flags are appended (later ones win).
func ppoArgs(prompts, out string, extra ...string) []string {
	return append([]string{"ppo", "--quiet", "--data.prompt_dataset", prompts, "--data.max_len", "64",
		"--rollout.batch_size", "4", "--rollout.n_samples_per_prompt", "2", "--rollout.max_new_tokens", "12",
		"--train.batch_size", "8", "--train.micro_batch_size", "4", "--train.max_iterations", "2",
		"--threads", "1", "--gemm", gemm.Default().Name(),
		"--actor.adam.lr", "1e-3", "--actor.lr_warmup_ratio", "0", "--critic.lr_warmup_ratio", "0",
		"--reward.rule", "length", "--reward.length_target", "20", "--ckpt.output_dir", out}, extra...)
}

// rewardModel trains a tiny reward model on stories260K (one step of
// `gorlhf train rm`) and returns its folder.
func rewardModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	for i := range 4 {
		fmt.Fprintf(&b, "{\"prompt\": \"Tell a story %d.\", \"chosen\": \"Lily saw a big dog in the park and they played.\", \"rejected\": \"No.\"}\n", i)
	}
	data := filepath.Join(dir, "pref.jsonl")
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "rm")
	args := []string{"rm", "--quiet", "--data.dataset", data, "--data.prompt_key", "prompt", "--train.batch_size", "4",
		"--train.micro_batch_size", "4", "--train.max_steps", "1", "--threads", "1", "--gemm", gemm.Default().Name(), "--ckpt.output_dir", out}
	if err := runTrain(context.Background(), args); err != nil {
		t.Fatalf("train rm: %v", err)
	}
	return out
}

// runPPO runs `train ppo` in this process (its workers, if any, are
// child processes) and returns how long it took.
func runPPOTimed(t *testing.T, args []string) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := runTrain(ctx, args); err != nil {
		t.Fatalf("train %s: %v", strings.Join(args, " "), err)
	}
	return time.Since(start)
}

// assertSameRun checks that two run folders hold byte-identical final
// actors (and critics, if any) and the same metrics rows, timings aside.
func assertSameRun(t *testing.T, want, got string) {
	t.Helper()
	assertSameRunLoose(t, want, got, "")
}

// assertSameRunLoose is assertSameRun with the metrics whose names start
// with loose (when not "") held to 1e-5 absolute instead of bit equality:
// the mismatch/* metrics compare the rollout engine's log-probs with the
// trainer's, and an engine that batches the same requests differently
// (a server answering one request per prompt) computes them with other
// rounding, though its tokens are the same.
func assertSameRunLoose(t *testing.T, want, got, loose string) {
	t.Helper()
	files := []string{safetensors.SingleName, filepath.Join("critic", safetensors.SingleName)}
	for i, f := range files {
		a, errA := os.ReadFile(filepath.Join(want, f))
		b, errB := os.ReadFile(filepath.Join(got, f))
		if i > 0 && os.IsNotExist(errA) && os.IsNotExist(errB) {
			continue // no critic
		}
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v / %v", f, errA, errB)
		}
		if !bytes.Equal(a, b) {
			assertSameWeights(t, filepath.Join(want, f), filepath.Join(got, f)) // names the tensor
			t.Fatalf("%s: the files differ (%d vs %d bytes)", f, len(a), len(b))
		}
	}
	wa, wb := metricRows(t, want), metricRows(t, got)
	if len(wa) == 0 || len(wa) != len(wb) {
		t.Fatalf("metrics.jsonl: %d rows in-process vs %d", len(wa), len(wb))
	}
	for i := range wa {
		if loose != "" {
			for k, v := range wa[i] {
				if !strings.HasPrefix(k, loose) {
					continue
				}
				a, okA := v.(float64)
				b, okB := wb[i][k].(float64)
				if !okA || !okB || math.Abs(a-b) > 1e-5 {
					t.Errorf("metrics row %d: %s = %v, want %v within 1e-5", i, k, wb[i][k], v)
				}
				delete(wa[i], k)
				delete(wb[i], k)
			}
		}
		if !reflect.DeepEqual(wa[i], wb[i]) {
			for k, v := range wa[i] {
				if !reflect.DeepEqual(v, wb[i][k]) {
					t.Errorf("metrics row %d (%v %v): %s = %v, want %v", i, wa[i]["split"], wa[i]["step"], k, wb[i][k], v)
				}
			}
			t.Fatalf("metrics row %d differs (keys %d vs %d)", i, len(wa[i]), len(wb[i]))
		}
	}
}

// metricRows reads metrics.jsonl without the timing keys (time*,
// tokens_per_sec*).
func metricRows(t *testing.T, dir string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	for line := range bytes.Lines(data) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for k := range r {
			if strings.HasPrefix(k, "time") || strings.HasPrefix(k, "tokens_per_sec") {
				delete(r, k)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// assertWorkers checks that a --launcher local run ran n worker
// processes, each of which registered with the driver and served its
// group, and ended when the driver ended the run.
func assertWorkers(t *testing.T, out string, n int) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(out, "workers", "worker-*.log"))
	if len(logs) != n {
		t.Fatalf("%d worker logs %v, want %d worker processes", len(logs), logs, n)
	}
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if !bytes.Contains(b, []byte("msg=registered")) || !bytes.Contains(b, []byte(`msg="the driver ended the run"`)) {
			t.Fatalf("%s: the worker did not register and end with the run:\n%s", l, b)
		}
	}
}

// TestPlaced_MatchesInproc is the first correctness bar of issue 18: PPO
// with GAE (actor, reference, critic and reward model, each in its own
// worker process, plus the rollout engine, with a rule reward mixed in
// by the driver) and GRPO (group_norm with a KL loss against the
// reference) under --launcher local end with byte-identical weights and
// the same metrics rows as the same runs in-process; then every
// co-location of the GAE run does too, in as many processes as it says.
func TestPlaced_MatchesInproc(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PPO with worker processes")
	}
	useTestBinary(t)
	prompts := placedPrompts(t)
	rm := rewardModel(t)
	dir := t.TempDir()
	gae := []string{"--algo.advantage.estimator", "gae", "--algo.kl.init_coef", "0.01", "--reward.model_name_or_path", rm,
		"--eval.dataset", prompts, "--eval.max_samples", "2"}
	grpo := []string{"--algo.advantage.estimator", "group_norm", "--algo.kl.init_coef", "0.01", "--algo.kl.use_loss",
		"--algo.kl.estimator", "k3"}
	run := func(name string, flags []string, extra ...string) string {
		out := filepath.Join(dir, name)
		d := runPPOTimed(t, ppoArgs(prompts, out, append(slices.Clone(flags), extra...)...))
		t.Logf("%-28s %v", name, d.Round(time.Millisecond))
		return out
	}
	gaeBase, grpoBase := run("gae-inproc", gae), run("grpo-inproc", grpo)
	a, _ := os.ReadFile(filepath.Join(gaeBase, safetensors.SingleName))
	b, _ := os.ReadFile(filepath.Join(grpoBase, safetensors.SingleName))
	if bytes.Equal(a, b) {
		t.Fatal("GAE and GRPO trained the same weights: the runs do not train")
	}
	for _, c := range []struct {
		name    string
		base    string
		flags   []string
		extra   []string
		workers int
	}{
		{"gae-local", gaeBase, gae, nil, 5},
		{"grpo-local", grpoBase, grpo, nil, 3},
		{"gae-colocate_actor_ref", gaeBase, gae, []string{"--train.colocate_actor_ref"}, 4},
		{"gae-colocate_critic_reward", gaeBase, gae, []string{"--train.colocate_critic_reward"}, 4},
		{"gae-colocate_both", gaeBase, gae, []string{"--train.colocate_actor_ref", "--train.colocate_critic_reward"}, 3},
		{"gae-colocate_all", gaeBase, gae, []string{"--train.colocate_all", "--rollout.num_engines", "1"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := run(c.name, c.flags, append([]string{"--launcher", "local"}, c.extra...)...)
			assertWorkers(t, out, c.workers)
			assertSameRun(t, c.base, out)
		})
	}
}
