package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// TestTrain_PPOAgent runs `gorlhf train ppo --agent.env chain` on
// stories260K for two iterations: multi-turn episodes end to end through
// the command line, and the errors a user meets first.
func TestTrain_PPOAgent(t *testing.T) {
	dir := t.TempDir()
	prompts := filepath.Join(dir, "prompts.jsonl")
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, "{\"input\": \"%d+%d=\"}\n", 20+i, i)
	}
	os.WriteFile(prompts, []byte(b.String()), 0o644)
	base := []string{"ppo", "--quiet", "--data.prompt_dataset", prompts, "--data.max_len", "64",
		"--rollout.batch_size", "2", "--rollout.n_samples_per_prompt", "2", "--rollout.max_new_tokens", "4",
		"--algo.advantage.estimator", "group_norm", "--algo.kl.init_coef", "0", "--train.batch_size", "4", "--train.micro_batch_size", "4"}
	out := filepath.Join(dir, "run")
	args := append(base, "--agent.env", "chain", "--agent.env_args", "steps=3", "--agent.max_turns", "5",
		"--train.max_iterations", "2", "--eval.dataset", prompts, "--eval.max_samples", "2", "--ckpt.output_dir", out)
	if err := runTrain(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var trainRows, evalRows int
	for _, r := range rows {
		if r.Values["agent_turns"] != 3 || r.Values["agent_done_frac"] != 1 {
			t.Fatalf("%s row at step %d: agent_turns %v, agent_done_frac %v", r.Split, r.Step, r.Values["agent_turns"], r.Values["agent_done_frac"])
		}
		switch r.Split {
		case "train":
			trainRows++
		case "eval":
			evalRows++
		}
	}
	if trainRows != 2 || evalRows != 2 {
		t.Fatalf("%d train and %d eval rows, want 2 and 2", trainRows, evalRows)
	}

	stories := filepath.Join(dir, "stories.jsonl")
	os.WriteFile(stories, []byte("{\"input\": \"Once upon a time\"}\n{\"input\": \"Lily saw a cat\"}\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--agent.env", "chess", "--data.prompt_dataset", prompts}, `unknown environment "chess" (built-in: arithmetic, chain, remote)`},
		{[]string{"--agent.env", "chain", "--agent.env_args", "steps=x", "--data.prompt_dataset", prompts}, `steps="x": not an integer`},
		{[]string{"--agent.env", "chain", "--reward.rule", "exact"}, "gives the rewards"},
		{[]string{"--agent.env", "chain", "--agent.max_turns", "0"}, "--agent.max_turns must be ≥ 1"},
		{[]string{"--agent.env", "chain", "--data.prompt_dataset", stories}, `prompt "Once upon a time" is not a problem`},
		{[]string{"--reward.rule", "length", "--reward.mix", "rule=x"}, `weight of "rule" is "x", want a number`},
		{[]string{"--reward.rule", "length", "--reward.mix", "model=1"}, `--reward.mix: "model" is not a reward source that is set (set: rule)`},
	} {
		args := append(append(append([]string{}, base...), c.args...), "--train.max_iterations", "1", "--ckpt.output_dir", filepath.Join(dir, "bad"))
		err := runTrain(context.Background(), args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
}

// TestServeEnv_TrainRemote runs `gorlhf serve env --env chain` and
// `gorlhf train ppo --agent.env remote` against it over loopback, both
// taking the bearer token from GORLHF_ENV_API_KEY.
func TestServeEnv_TrainRemote(t *testing.T) {
	t.Setenv(envAPIKeyEnv, "s3cret")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- runServeEnv(ctx, []string{"--env", "chain", "--env_args", "steps=2", "--addr", addr})
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve env: %v", err)
		}
	}()
	for range 100 { // wait for the listener
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	dir := t.TempDir()
	prompts := filepath.Join(dir, "prompts.jsonl")
	os.WriteFile(prompts, []byte("{\"input\": \"23+4=\"}\n{\"input\": \"51+7=\"}\n"), 0o644)
	out := filepath.Join(dir, "run")
	args := []string{"ppo", "--quiet", "--data.prompt_dataset", prompts, "--data.max_len", "64",
		"--rollout.batch_size", "2", "--rollout.n_samples_per_prompt", "2", "--rollout.max_new_tokens", "4",
		"--algo.advantage.estimator", "group_norm", "--algo.kl.init_coef", "0", "--train.batch_size", "4",
		"--train.micro_batch_size", "4", "--train.max_iterations", "1", "--ckpt.output_dir", out,
		"--agent.env", "remote", "--agent.env_args", "url=http://" + addr + ",timeout=10s", "--agent.max_turns", "4"}
	if err := runTrain(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
	if err != nil || len(rows) == 0 || rows[0].Values["agent_turns"] != 2 || rows[0].Values["agent_done_frac"] != 1 {
		t.Fatalf("metrics %v, %v", rows, err)
	}
	// a wrong token is refused with the server's answer in the error
	t.Setenv(envAPIKeyEnv, "wrong")
	args = append(args, "--ckpt.output_dir", filepath.Join(dir, "run2"))
	if err := runTrain(context.Background(), args); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestStopListFlag(t *testing.T) {
	var got []string
	l := stopList{&got}
	for in, want := range map[string][]string{
		`["\n", "</answer>"]`: {"\n", "</answer>"},
		`\n`:                  {"\n"},
		`###`:                 {"###"},
		`a\tb`:                {"a\tb"},
	} {
		if err := l.Set(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("Set(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if err := l.Set(`["x", 3]`); err == nil {
		t.Error("a list with a number was accepted")
	}
	c := ppo.DefaultConfig()
	c.Rollout.Stop = []string{""}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "stop string must not be empty") {
		t.Errorf("empty stop string: %v", err)
	}
}
