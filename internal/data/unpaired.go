package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
)

// UnpairedKeys says how to read an unpaired preference record, KTO's data
// (OpenRLHF's --input_key, --output_key, --label_key of train_kto).
type UnpairedKeys struct {
	// InputKey is the prompt, or (with a chat template and no OutputKey)
	// the conversation whose last turn is the response.
	InputKey string
	// OutputKey is the response; "" only with a chat template.
	OutputKey string
	// LabelKey is the label: true or 1 marks a desirable response, false
	// or 0 an undesirable one.
	LabelKey string
}

// Validate checks the keys.
func (k UnpairedKeys) Validate(chat bool) error {
	var c Config
	switch {
	case k.InputKey == "":
		return fmt.Errorf("data: %s is empty", cfgflag.Flag(&c, &c.InputKey))
	case k.LabelKey == "":
		return errors.New("data: the label key is empty")
	case !chat && k.OutputKey == "":
		return fmt.Errorf("data: unpaired samples without a chat template need %s", cfgflag.Flag(&c, &c.OutputKey))
	}
	return nil
}

// Unpaired is one sample of an unpaired preference set: a prompt, a
// response marked desirable or not, the encoded sequence (the response
// trained on), and the texts, from which a mismatched sequence (this
// prompt, another sample's response) is built for KTO's KL estimate.
type Unpaired struct {
	Sample           Sample
	Prompt, Response string
	// Special is true when the texts are rendered chat templates (their
	// special tokens become ids).
	Special   bool
	Desirable bool
	Pos       Position
}

// ReadUnpaired reads dataset files (see ReadFiles) and turns their records
// into unpaired samples; the report covers both stages.
func (e *Encoder) ReadUnpaired(spec string, maxSamples int, k UnpairedKeys) ([]Unpaired, *Report, error) {
	recs, rep, err := ReadFiles(spec, maxSamples)
	if err != nil {
		return nil, nil, err
	}
	out, encRep, err := e.UnpairedSamples(spec, recs, k)
	return withReadReport(rep, out, encRep, err)
}

// UnpairedSamples turns records into unpaired samples, skipping (and
// reporting) the ones that cannot be used. It fails only when none is
// usable.
func (e *Encoder) UnpairedSamples(name string, recs []Record, k UnpairedKeys) ([]Unpaired, *Report, error) {
	if err := k.Validate(e.Template != nil); err != nil {
		return nil, nil, err
	}
	return encodeAll(name, recs, func(rec Record) (Unpaired, bool, error) { return e.Unpaired(rec, k) })
}

// Unpaired turns one record into an unpaired sample, encoded as a DPO
// sequence is (Pair): a truncated sequence ends in EOS, and a record
// whose prompt leaves fewer than two tokens of budget is skipped.
func (e *Encoder) Unpaired(rec Record, k UnpairedKeys) (Unpaired, bool, error) {
	desirable, err := label(rec, k.LabelKey)
	if err != nil {
		return Unpaired{}, false, err
	}
	// A pair whose chosen and rejected are the same response reads the
	// prompt and response exactly as DPO's records are read.
	pk := PairKeys{PromptKey: k.InputKey, ChosenKey: k.OutputKey, RejectedKey: k.OutputKey, DPO: true}
	if k.OutputKey == "" {
		pk = PairKeys{ChosenKey: k.InputKey, RejectedKey: k.InputKey, DPO: true}
	}
	prompt, response, _, special, err := e.pairText(rec, pk)
	if err != nil {
		return Unpaired{}, false, err
	}
	u := Unpaired{Prompt: prompt, Response: response, Special: special, Desirable: desirable, Pos: rec.Pos}
	var truncated bool
	u.Sample, truncated = e.pairSample(prompt, response, special)
	u.Sample.Pos = rec.Pos
	if u.Sample.PromptLen() >= e.MaxLen-2 {
		return Unpaired{}, false, skipError(fmt.Sprintf("prompt too long for max_len %d", e.MaxLen))
	}
	return u, truncated, nil
}

// Mismatched encodes the prompt of p followed by the response of r (the
// unmatched y′|x of KTO's KL estimate), its response trained on.
func (e *Encoder) Mismatched(p, r Unpaired) Sample {
	s, _ := e.pairSample(p.Prompt, r.Response, p.Special || r.Special)
	s.Pos = p.Pos
	return s
}

// label reads a KTO label: true/1 desirable, false/0 undesirable.
func label(rec Record, key string) (bool, error) {
	raw, ok := rec.Fields[key]
	if !ok {
		return false, skipError(fmt.Sprintf("missing key %q", key))
	}
	raw = bytes.TrimSpace(raw)
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil && (f == 0 || f == 1) {
		return f == 1, nil
	}
	return false, skipError(fmt.Sprintf("key %q is not a label (true/false or 1/0)", key))
}

// SelectUnpaired returns the samples at idx.
func SelectUnpaired(u []Unpaired, idx []int) []Unpaired {
	out := make([]Unpaired, len(idx))
	for i, j := range idx {
		out[i] = u[j]
	}
	return out
}
