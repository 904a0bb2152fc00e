package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
)

// DefaultRewardTemplate is OpenRLHF's conditional-SFT prompt
// (utils/processor.py DEFAULT_REWARD_PROMPT).
const DefaultRewardTemplate = "{input} <rm_score>: {reward} "

// RewardConditioning is conditional SFT's preprocessing (SteerLM-style,
// OpenRLHF v0.8's conditional_sft_processor): every record's input is
// rewritten through a template holding "{input}" and "{reward}", the
// reward being the record's score (e.g. from a reward model) written with
// two decimals, optionally z-normalised over the dataset first. A model
// fine-tuned on such prompts learns to produce responses of the reward it
// is asked for. The zero value is off.
type RewardConditioning struct {
	// Template is the conditioned prompt, e.g. DefaultRewardTemplate
	// (--data.reward_template, OpenRLHF's --reward_template); "" = off.
	Template string `flag:"data.reward_template"`
	// RewardKey is the numeric field holding the score (--data.reward_key;
	// OpenRLHF writes "reward").
	RewardKey string `flag:"data.reward_key"`
	// Normalize z-normalises the scores over the dataset, (r − mean)/std
	// with the unbiased std (--data.normalize_reward, OpenRLHF's
	// --normalize_reward).
	Normalize bool `flag:"data.normalize_reward"`
}

// Enabled reports whether records are conditioned.
func (c RewardConditioning) Enabled() bool { return c.Template != "" }

// Validate checks the template and the key.
func (c RewardConditioning) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	for _, p := range []string{"{input}", "{reward}"} {
		if !strings.Contains(c.Template, p) {
			errs = append(errs, fmt.Errorf("data: %s %q has no %s", cfgflag.Flag(&c, &c.Template), c.Template, p))
		}
	}
	if c.RewardKey == "" {
		errs = append(errs, fmt.Errorf("data: %s is empty", cfgflag.Flag(&c, &c.RewardKey)))
	}
	return errors.Join(errs...)
}

// Prompt is the conditioned prompt of input at the given reward: {reward}
// is replaced first, then {input}, as OpenRLHF does.
func (c RewardConditioning) Prompt(input string, reward float64) string {
	s := strings.ReplaceAll(c.Template, "{reward}", fmt.Sprintf("%.2f", reward))
	return strings.ReplaceAll(s, "{input}", input)
}

// Apply returns the records with their inputKey field conditioned. A
// record without a numeric score or with a non-text input is skipped and
// reported in rep.
func (c RewardConditioning) Apply(recs []Record, inputKey string, rep *Report) ([]Record, error) {
	if !c.Enabled() {
		return recs, nil
	}
	kept := make([]Record, 0, len(recs))
	var rewards []float64
	for _, rec := range recs {
		raw, ok := rec.Fields[c.RewardKey]
		var r float64
		if !ok || json.Unmarshal(raw, &r) != nil {
			rep.Skip(rec.Pos, fmt.Sprintf("key %q is not a number (conditional SFT)", c.RewardKey))
			continue
		}
		in, err := field(rec, inputKey)
		if err == nil && in.IsChat {
			err = skipError(fmt.Sprintf("key %q holds messages: conditional SFT needs text", inputKey))
		}
		var skip skipError
		if errors.As(err, &skip) {
			rep.Skip(rec.Pos, skip.Error())
			continue
		}
		kept, rewards = append(kept, rec), append(rewards, r)
	}
	if c.Normalize {
		if err := zNormalize(rewards); err != nil {
			return nil, fmt.Errorf("data: %s: %s: %w", rep.Name, cfgflag.Flag(&c, &c.Normalize), err)
		}
	}
	out := make([]Record, len(kept))
	for i, rec := range kept {
		in, _ := field(rec, inputKey)
		text, err := json.Marshal(c.Prompt(in.Text, rewards[i]))
		if err != nil {
			return nil, fmt.Errorf("data: %s: %w", rec.Pos, err)
		}
		fields := make(map[string]json.RawMessage, len(rec.Fields))
		for k, v := range rec.Fields {
			fields[k] = v
		}
		fields[inputKey] = text
		out[i] = Record{Pos: rec.Pos, Fields: fields}
	}
	return out, nil
}

// zNormalize replaces x by (x − mean)/std, std the unbiased standard
// deviation (torch.std's default).
func zNormalize(x []float64) error {
	n := float64(len(x))
	if len(x) < 2 {
		return fmt.Errorf("needs at least 2 scores, got %d", len(x))
	}
	var mean, ss float64
	for _, v := range x {
		mean += v
	}
	mean /= n
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	std := math.Sqrt(ss / (n - 1))
	if !(std > 0) {
		return errors.New("all scores are equal")
	}
	for i := range x {
		x[i] = (x[i] - mean) / std
	}
	return nil
}
