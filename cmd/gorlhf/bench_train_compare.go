package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
)

// benchTrainComparison is what `gorlhf bench train --rounds N --json`
// prints: every run, and the medians over rounds of each configuration.
type benchTrainComparison struct {
	Runs         []*benchTrainResult `json:"runs"`
	Plain        benchTrainSummary   `json:"plain"`
	Checkpointed benchTrainSummary   `json:"checkpointed"`
	// ActivationReduction is 1 − checkpointed/plain activation memory;
	// StepTimeIncrease is checkpointed/plain step time − 1 (medians).
	ActivationReduction float64 `json:"activation_reduction"`
	StepTimeIncrease    float64 `json:"step_time_increase"`
}

// benchTrainSummary holds medians over the rounds of one configuration.
type benchTrainSummary struct {
	StepMs       float64 `json:"step_ms_median"`
	PeakRSSMB    float64 `json:"peak_rss_mb_median"`
	BaseRSSMB    float64 `json:"base_rss_mb_median"`
	ActivationMB float64 `json:"activation_mb_median"`
	UserCPUSec   float64 `json:"user_cpu_s_median"`
	SysCPUSec    float64 `json:"sys_cpu_s_median"`
}

// benchTrainCompare runs `bench train` with fs's flags in 2×rounds fresh
// processes, without and with gradient checkpointing, alternating which
// goes first in each round, so each peak RSS is its own process's.
func benchTrainCompare(ctx context.Context, fs *flag.FlagSet, rounds int, asJSON bool) error {
	exe, prefix, err := workerExe()
	if err != nil {
		return fmt.Errorf("bench train: %w", err)
	}
	args := append(slices.Clone(prefix), "bench", "train", "--json")
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "rounds", "json", "gradient_checkpointing", "cpuprofile":
		default:
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	var cmp benchTrainComparison
	var plain, ckpt []*benchTrainResult
	for i := range rounds {
		order := []bool{false, true}
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, on := range order {
			res, err := benchTrainChild(ctx, exe, append(slices.Clone(args), "--gradient_checkpointing="+strconv.FormatBool(on)))
			if err != nil {
				return fmt.Errorf("bench train: round %d, gradient checkpointing %v: %w", i+1, on, err)
			}
			cmp.Runs = append(cmp.Runs, res)
			if on {
				ckpt = append(ckpt, res)
			} else {
				plain = append(plain, res)
			}
			if !asJSON {
				fmt.Printf("round %d, gradient checkpointing %-5v: step %7.1f ms, peak RSS %6.0f MB, training state %6.0f MB, activations %6.0f MB; process CPU user %.1f s, sys %.1f s\n",
					i+1, on, res.StepMsMedian, res.PeakRSSMB, res.BaseRSSMB, res.ActivationMB, res.UserCPUSec, res.SysCPUSec)
			}
		}
	}
	cmp.Plain, cmp.Checkpointed = summarize(plain), summarize(ckpt)
	if cmp.Plain.ActivationMB > 0 {
		cmp.ActivationReduction = 1 - cmp.Checkpointed.ActivationMB/cmp.Plain.ActivationMB
	}
	cmp.StepTimeIncrease = cmp.Checkpointed.StepMs/cmp.Plain.StepMs - 1
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(cmp)
	}
	r := cmp.Runs[0]
	fmt.Printf("%s: %d layers, d=%d, %d heads, vocab %d, seq %d, batch %d, %.2f M params; %s, %d threads; medians of %d rounds:\n",
		r.Arch, r.Layers, r.Dim, r.Heads, r.Vocab, r.Seq, r.Batch, float64(r.Params)/1e6, r.Engine, r.Threads, rounds)
	for _, c := range []struct {
		name string
		s    benchTrainSummary
	}{{"without", cmp.Plain}, {"with", cmp.Checkpointed}} {
		fmt.Printf("  %-7s gradient checkpointing: step %7.1f ms, peak RSS %6.0f MB, training state %6.0f MB, activations %6.0f MB; process CPU user %.1f s, sys %.1f s\n",
			c.name, c.s.StepMs, c.s.PeakRSSMB, c.s.BaseRSSMB, c.s.ActivationMB, c.s.UserCPUSec, c.s.SysCPUSec)
	}
	fmt.Printf("activation memory %+.1f %%, step time %+.1f %%\n", -100*cmp.ActivationReduction, 100*cmp.StepTimeIncrease)
	return nil
}

// benchTrainChild runs one `bench train --json` process.
func benchTrainChild(ctx context.Context, exe string, args []string) (*benchTrainResult, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, bytes.TrimSpace(errOut.Bytes()))
	}
	var res benchTrainResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("reading its result %q: %w", out.String(), err)
	}
	res.UserCPUSec, res.SysCPUSec = cmd.ProcessState.UserTime().Seconds(), cmd.ProcessState.SystemTime().Seconds()
	return &res, nil
}

func summarize(runs []*benchTrainResult) benchTrainSummary {
	pick := func(f func(*benchTrainResult) float64) float64 {
		var x []float64
		for _, r := range runs {
			x = append(x, f(r))
		}
		return median(x)
	}
	return benchTrainSummary{
		StepMs:       pick(func(r *benchTrainResult) float64 { return r.StepMsMedian }),
		PeakRSSMB:    pick(func(r *benchTrainResult) float64 { return r.PeakRSSMB }),
		BaseRSSMB:    pick(func(r *benchTrainResult) float64 { return r.BaseRSSMB }),
		ActivationMB: pick(func(r *benchTrainResult) float64 { return r.ActivationMB }),
		UserCPUSec:   pick(func(r *benchTrainResult) float64 { return r.UserCPUSec }),
		SysCPUSec:    pick(func(r *benchTrainResult) float64 { return r.SysCPUSec }),
	}
}
