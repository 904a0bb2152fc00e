// Package batchinfer is OpenRLHF's batch_inference: generate N samples per
// prompt with the rollout engine (eval_task generate / generate_vllm),
// score prompt/response records with a reward source (eval_task rm: a
// reward model, a process reward model or a rule grader), and the
// post-processors that turn scored samples into training data: rs
// (rejection sampling / best-of-n: the best response per prompt, as SFT
// data) and iter_dpo (the best and the worst response per prompt, as a
// preference pair). Chained with train sft they are the RAFT loop; with
// train dpo, iterative DPO.
package batchinfer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// Record is one line of a generate or rm output (OpenRLHF's {"input",
// "output", "reward"}); Label is carried from the prompt dataset for
// rule graders.
type Record struct {
	Input  string   `json:"input"`
	Output string   `json:"output"`
	Reward *float64 `json:"reward,omitempty"`
	Label  string   `json:"label,omitempty"`
}

// Pair is one line of the iter_dpo output.
type Pair struct {
	Prompt         string  `json:"prompt"`
	Chosen         string  `json:"chosen"`
	ChosenReward   float64 `json:"chosen_reward"`
	Rejected       string  `json:"rejected"`
	RejectedReward float64 `json:"rejected_reward"`
}

// Generate samples n completions of every prompt in one engine call (the
// engine batches them and shares each prompt's KV blocks across its
// samples) and returns the records in OpenRLHF's order: every prompt's
// first sample, then every prompt's second, and so on. Prompt i draws
// from seed+i, its samples from their index, so a record does not depend
// on the others.
func Generate(ctx context.Context, eng *generate.Engine, prompts []data.Prompt, n int, p generate.SamplingParams) ([]Record, error) {
	if n < 1 {
		return nil, fmt.Errorf("batchinfer: best_of_n %d must be ≥ 1", n)
	}
	reqs := make([]generate.Request, len(prompts))
	for i, pr := range prompts {
		sp := p
		sp.N, sp.Seed = n, p.Seed+uint64(i)
		reqs[i] = generate.Request{ID: fmt.Sprint(i), Prompt: pr.IDs, Params: sp}
		if err := eng.FitLength(&reqs[i], false); err != nil {
			return nil, fmt.Errorf("batchinfer: prompt %d: %w", i, err)
		}
		if err := eng.Validate(reqs[i]); err != nil {
			return nil, fmt.Errorf("batchinfer: prompt %d: %w", i, err)
		}
	}
	res, err := eng.Generate(ctx, reqs)
	if err != nil {
		return nil, fmt.Errorf("batchinfer: generate: %w", err)
	}
	out := make([]Record, 0, n*len(prompts))
	for j := range n {
		for i, pr := range prompts {
			out = append(out, Record{Input: pr.Text, Output: res[i].Completions[j].Text, Label: pr.Label})
		}
	}
	return out, nil
}

// Score sets every record's reward from src (prompt = Input, response =
// Output, label = Label), in batches of batch records.
func Score(ctx context.Context, src reward.Source, recs []Record, batch int) error {
	batch = max(batch, 1)
	for lo := 0; lo < len(recs); lo += batch {
		part := recs[lo:min(lo+batch, len(recs))]
		samples := make([]grade.Sample, len(part))
		for i, r := range part {
			samples[i] = grade.Sample{Prompt: r.Input, Response: r.Output, Label: r.Label}
		}
		res, err := src.Score(ctx, samples)
		if err != nil {
			return fmt.Errorf("batchinfer: score records %d…%d: %w", lo, lo+len(part)-1, err)
		}
		for i := range part {
			v := res[i].Reward
			part[i].Reward = &v
		}
	}
	return nil
}

// MeanStd returns the mean and the unbiased standard deviation of the
// records' rewards (what OpenRLHF prints after scoring).
func MeanStd(recs []Record) (mean, std float64) {
	var sum float64
	n := 0
	for _, r := range recs {
		if r.Reward != nil {
			sum += *r.Reward
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	mean = sum / float64(n)
	var ss float64
	for _, r := range recs {
		if r.Reward != nil {
			ss += (*r.Reward - mean) * (*r.Reward - mean)
		}
	}
	if n > 1 {
		std = math.Sqrt(ss / float64(n-1))
	}
	return mean, std
}

// RejectionSampling keeps the highest-reward record of every input (the
// first on ties), in the order inputs first appear: OpenRLHF's rs
// post-processor, best-of-n selection as SFT data.
func RejectionSampling(recs []Record) ([]Record, error) {
	var order []string
	best := map[string]Record{}
	for i, r := range recs {
		if r.Reward == nil {
			return nil, fmt.Errorf("batchinfer: rs: record %d has no reward", i)
		}
		b, ok := best[r.Input]
		if !ok {
			order = append(order, r.Input)
		}
		if !ok || *r.Reward > *b.Reward {
			best[r.Input] = r
		}
	}
	out := make([]Record, len(order))
	for i, in := range order {
		out[i] = best[in]
	}
	return out, nil
}

// IterativeDPO pairs the highest- and the lowest-reward response of every
// input (the first on ties), in the order inputs first appear: OpenRLHF's
// iter_dpo post-processor. Inputs whose responses all score the same
// carry no preference and are left out (OpenRLHF keeps them as a pair of
// one response with itself); ties is how many.
func IterativeDPO(recs []Record) (pairs []Pair, ties int, err error) {
	var order []string
	pm := map[string]*Pair{}
	for i, r := range recs {
		if r.Reward == nil {
			return nil, 0, fmt.Errorf("batchinfer: iter_dpo: record %d has no reward", i)
		}
		p, ok := pm[r.Input]
		if !ok {
			order = append(order, r.Input)
			pm[r.Input] = &Pair{Prompt: r.Input, Chosen: r.Output, ChosenReward: *r.Reward, Rejected: r.Output, RejectedReward: *r.Reward}
			continue
		}
		if *r.Reward > p.ChosenReward {
			p.Chosen, p.ChosenReward = r.Output, *r.Reward
		}
		if *r.Reward < p.RejectedReward {
			p.Rejected, p.RejectedReward = r.Output, *r.Reward
		}
	}
	for _, in := range order {
		p := pm[in]
		if p.ChosenReward == p.RejectedReward {
			ties++
			continue
		}
		pairs = append(pairs, *p)
	}
	return pairs, ties, nil
}

// ReadRecords reads prompt/response records from JSON Lines files
// (data.ReadFiles: comma-separated, .jsonl, .json, .parquet), the fields
// named by the keys; labelKey "" reads no label. A record without a
// string input or output is an error naming its file and line.
func ReadRecords(spec string, maxSamples int, inputKey, outputKey, labelKey string) ([]Record, error) {
	recs, _, err := data.ReadFiles(spec, maxSamples)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(recs))
	for _, rec := range recs {
		var r Record
		if err := str(rec, inputKey, &r.Input); err != nil {
			return nil, fmt.Errorf("batchinfer: %s: %w", rec.Pos, err)
		}
		if err := str(rec, outputKey, &r.Output); err != nil {
			return nil, fmt.Errorf("batchinfer: %s: %w", rec.Pos, err)
		}
		if labelKey != "" {
			if raw, ok := rec.Fields[labelKey]; ok {
				if json.Unmarshal(raw, &r.Label) != nil {
					r.Label = strings.TrimSpace(string(raw))
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func str(rec data.Record, key string, dst *string) error {
	raw, ok := rec.Fields[key]
	if !ok {
		return fmt.Errorf("no %q field", key)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("field %q is not a string", key)
	}
	return nil
}

// WriteJSONL writes one JSON object per line to path, atomically (a
// temporary file renamed into place), creating its folder.
func WriteJSONL[T any](path string, rows []T) (err error) {
	if path == "" {
		return errors.New("batchinfer: no output path (--output_path)")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("batchinfer: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".batchinfer-*")
	if err != nil {
		return fmt.Errorf("batchinfer: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("batchinfer: %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("batchinfer: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("batchinfer: %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("batchinfer: %w", err)
	}
	return nil
}
