package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// benchZero is `gorlhf bench zero`: the memory one rank holds training a
// random Llama with ZeRO sharding over local ranks, next to one process
// training it alone, each a fresh `gorlhf train sft --report_memory`.
type benchZero struct {
	dim, layers, inter, heads, seq int
	ranks, stage, steps, threads   int
	gemm, keep                     string
	ckpt, asJSON                   bool
}

func runBenchZero(ctx context.Context, args []string) error {
	b := benchZero{}
	fs := newFlagSet("bench zero", "bench zero [flags]")
	fs.IntVar(&b.dim, "dim", 512, "hidden size of the random Llama")
	fs.IntVar(&b.layers, "layers", 31, "transformer blocks (31 × dim 512 × intermediate 1408 ≈ 100M parameters)")
	fs.IntVar(&b.inter, "intermediate", 1408, "MLP width")
	fs.IntVar(&b.heads, "heads", 8, "attention heads")
	fs.IntVar(&b.seq, "seq", 256, "tokens per training sample")
	fs.IntVar(&b.ranks, "ranks", 4, "data-parallel ranks (local processes)")
	fs.IntVar(&b.stage, "stage", 3, "ZeRO stage of the ranks")
	fs.IntVar(&b.steps, "steps", 2, "optimizer steps of each run (one micro-batch of one sample per rank each)")
	fs.IntVar(&b.threads, "threads", 1, "kernel threads per process")
	fs.StringVar(&b.gemm, "gemm", "", "GEMM kernel of every process (default: auto)")
	fs.BoolVar(&b.ckpt, "gradient_checkpointing", true, "recompute block activations in both runs (activations then barely count)")
	fs.StringVar(&b.keep, "dir", "", "work folder to keep (default: a temporary one, removed)")
	fs.BoolVar(&b.asJSON, "json", false, "print the reports as JSON lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := b.keep
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "gorlhf-bench-zero-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	modelDir, n, err := b.writeModel(dir)
	if err != nil {
		return err
	}
	data, err := b.writeData(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench zero: random Llama, %.1fM parameters (dim %d, %d layers, intermediate %d), %d-token samples, %d steps\n",
		float64(n)/1e6, b.dim, b.layers, b.inter, b.seq, b.steps)
	one, err := b.runOne(ctx, modelDir, data, dir)
	if err != nil {
		return err
	}
	ranks, err := b.runRanks(ctx, modelDir, data, dir)
	if err != nil {
		return err
	}
	return b.print(one, ranks)
}

// writeModel saves a seeded random Llama with the stories260K tokenizer
// (vocabulary 512).
func (b benchZero) writeModel(dir string) (string, int, error) {
	cfg := llama.Config{VocabSize: 512, Hidden: b.dim, Intermediate: b.inter, Layers: b.layers, Heads: b.heads,
		RMSNormEps: 1e-5, MaxPositions: max(b.seq, 512)}
	m, err := llama.New(cfg)
	if err != nil {
		return "", 0, fmt.Errorf("bench zero: %w", err)
	}
	m.Init(rand.New(rand.NewPCG(1, 2)))
	js, err := json.Marshal(m.Config)
	if err != nil {
		return "", 0, err
	}
	var hf map[string]any
	_ = json.Unmarshal(js, &hf)
	hf["model_type"], hf["architectures"] = "llama", []string{"LlamaForCausalLM"}
	js, _ = json.Marshal(hf)
	tok, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		return "", 0, err
	}
	out := filepath.Join(dir, "model")
	if err := load.SaveWith(out, m, js, safetensors.F32, tok.TokenizerFiles); err != nil {
		return "", 0, fmt.Errorf("bench zero: %w", err)
	}
	return out, m.Params().Count(), nil
}

// writeData writes prompt/response records of about seq tokens.
func (b benchZero) writeData(dir string) (string, error) {
	var sb strings.Builder
	words := strings.Fields("the little dog ran to the park and found a big red ball under a tree near the pond")
	for i := range 4 * b.ranks * b.steps {
		var resp []string
		for j := range b.seq {
			resp = append(resp, words[(i+j)%len(words)])
		}
		fmt.Fprintf(&sb, "{\"input\": \"Tell story %d.\", \"output\": %q}\n", i, strings.Join(resp, " "))
	}
	p := filepath.Join(dir, "data.jsonl")
	return p, os.WriteFile(p, []byte(sb.String()), 0o644)
}

// args is the `train sft` command line of one run.
func (b benchZero) args(modelDir, data, out string, extra ...string) []string {
	a := []string{"train", "sft", "--quiet", "--report_memory", "--model.model_name_or_path", modelDir,
		"--data.dataset", data, "--data.output_key", "output", "--data.max_len", strconv.Itoa(b.seq),
		"--train.batch_size", strconv.Itoa(b.ranks), "--train.micro_batch_size", "1", "--train.max_steps", strconv.Itoa(b.steps),
		"--sft.samples", "0", "--threads", strconv.Itoa(b.threads), "--ckpt.output_dir", out, "--ckpt.overwrite"}
	if b.gemm != "" {
		a = append(a, "--gemm", b.gemm)
	}
	if b.ckpt {
		a = append(a, "--model.gradient_checkpointing_enable")
	}
	return append(a, extra...)
}

// zeroReport is one process's --report_memory line plus its getrusage
// peak.
type zeroReport struct {
	Rank      int     `json:"rank"`
	Ranks     int     `json:"ranks"`
	Stage     int     `json:"zero_stage"`
	Params    int64   `json:"param_bytes"`
	Grads     int64   `json:"grad_bytes"`
	Optim     int64   `json:"optim_bytes"`
	Scratch   int64   `json:"scratch_bytes"`
	SetupRSS  float64 `json:"setup_rss_mb"`
	SetupPeak float64 `json:"setup_peak_rss_mb"`
	TrainPeak float64 `json:"train_peak_rss_mb"`
	Peak      float64 `json:"peak_rss_mb"`
	Live      float64 `json:"peak_live_heap_mb"`
	Reset     bool    `json:"peak_reset"`
}

func (r zeroReport) stateMB() float64 { return float64(r.Params+r.Grads+r.Optim+r.Scratch) / (1 << 20) }

func (b benchZero) runOne(ctx context.Context, modelDir, data, dir string) (zeroReport, error) {
	reps, err := b.start(ctx, [][]string{b.args(modelDir, data, filepath.Join(dir, "one"))}, nil)
	if err != nil {
		return zeroReport{}, fmt.Errorf("bench zero: one process: %w", err)
	}
	return reps[0], nil
}

// runRanks starts the ranks as direct children (so each one's output and
// peak are this process's to read), rank 0 listening for the others.
func (b benchZero) runRanks(ctx context.Context, modelDir, data, dir string) ([]zeroReport, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	var args, envs [][]string
	for r := range b.ranks {
		args = append(args, b.args(modelDir, data, filepath.Join(dir, "ranks"), "--launcher", "local",
			"--model.num_workers_per_node", strconv.Itoa(b.ranks), "--ds.zero_stage", strconv.Itoa(b.stage)))
		envs = append(envs, []string{launch.VarRank + "=" + strconv.Itoa(r), launch.VarWorldSize + "=" + strconv.Itoa(b.ranks),
			launch.VarDriverAddr + "=" + addr, launch.VarRunSecret + "=" + secret})
	}
	reps, err := b.start(ctx, args, envs)
	if err != nil {
		return nil, fmt.Errorf("bench zero: %d ranks: %w", b.ranks, err)
	}
	return reps, nil
}

// start runs one process per command line and reads its report.
func (b benchZero) start(ctx context.Context, args, envs [][]string) ([]zeroReport, error) {
	exe, prefix, err := workerExe()
	if err != nil {
		return nil, err
	}
	reps := make([]zeroReport, len(args))
	errs := make([]error, len(args))
	var wg sync.WaitGroup
	for i, a := range args {
		cmd := exec.CommandContext(ctx, exe, append(append([]string(nil), prefix...), a...)...)
		cmd.Env = os.Environ()
		if envs != nil {
			cmd.Env = append(cmd.Env, envs[i]...)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				errs[i] = fmt.Errorf("process %d: %w: %s", i, err, lastLines(stderr.String(), 5))
				return
			}
			errs[i] = parseReport(stdout.Bytes(), &reps[i])
		})
	}
	wg.Wait()
	return reps, errors.Join(errs...)
}

func parseReport(out []byte, r *zeroReport) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line := sc.Bytes(); bytes.Contains(line, []byte(`"memory":true`)) {
			return json.Unmarshal(line, r)
		}
	}
	return errors.New("no memory report on stdout")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// print writes the table: every process's state and peaks, and each
// rank's training peak as a share of the one process's.
func (b benchZero) print(one zeroReport, ranks []zeroReport) error {
	if b.asJSON {
		for _, r := range append([]zeroReport{one}, ranks...) {
			js, _ := json.Marshal(r)
			fmt.Println(string(js))
		}
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tstate MB\tparams\tgrads\toptim\tscratch\tpeak live heap\tvs one process\ttraining peak RSS\tvs one process\tRSS after setup\twhole-run peak RSS\t")
	row := func(name string, r zeroReport) {
		mb := func(x int64) string { return fmt.Sprintf("%.0f", float64(x)/(1<<20)) }
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%.0f\t%.1f %%\t%.0f\t%.1f %%\t%.0f\t%.0f\t\n", name, r.stateMB(), mb(r.Params), mb(r.Grads), mb(r.Optim), mb(r.Scratch),
			r.Live, 100*r.Live/one.Live, r.TrainPeak, 100*r.TrainPeak/one.TrainPeak, r.SetupRSS, r.Peak)
	}
	row("one process", one)
	for _, r := range ranks {
		row(fmt.Sprintf("rank %d/%d, stage %d", r.Rank, r.Ranks, r.Stage), r)
	}
	return tw.Flush()
}
