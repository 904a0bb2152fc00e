package data

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
)

// PairKeys says how to read a preference record (OpenRLHF's
// --data.prompt_key, --data.chosen_key, --data.rejected_key).
type PairKeys struct {
	PromptKey   string // "" : the prompt is empty, or (DPO with a chat template) all but the last chosen turn
	ChosenKey   string
	RejectedKey string
	// MarginKey names a numeric margin field for the reward-model loss
	// (OpenRLHF reads "margin" with --model.margin_loss_enable); "" = none.
	MarginKey string
	// DPO makes, with a chat template and no prompt key, the prompt the
	// conversation before the last chosen turn, as OpenRLHF's is_dpo.
	DPO bool
}

// Validate checks the keys.
func (k PairKeys) Validate() error {
	if k.ChosenKey == "" || k.RejectedKey == "" {
		return errors.New("data: chosen and rejected keys must be set")
	}
	return nil
}

// Pair is one preference: a chosen and a rejected sequence after the same
// prompt. In each, Loss marks the response tokens (what DPO scores); a
// reward model reads its score at the last token, which is always EOS when
// the tokenizer has one.
type Pair struct {
	Chosen, Rejected Sample
	Margin           float32
	Pos              Position
}

// ReadPairs reads dataset files (see ReadFiles) and turns their records
// into preference pairs; the report covers both stages.
func (e *Encoder) ReadPairs(spec string, maxSamples int, k PairKeys) ([]Pair, *Report, error) {
	recs, rep, err := ReadFiles(spec, maxSamples)
	if err != nil {
		return nil, nil, err
	}
	pairs, encRep, err := e.Pairs(spec, recs, k)
	return withReadReport(rep, pairs, encRep, err)
}

// Pairs turns records into preference pairs, skipping (and reporting) the
// ones that cannot be used. It fails only when none is usable.
func (e *Encoder) Pairs(name string, recs []Record, k PairKeys) ([]Pair, *Report, error) {
	if err := k.Validate(); err != nil {
		return nil, nil, err
	}
	return encodeAll(name, recs, func(rec Record) (Pair, bool, error) { return e.Pair(rec, k) })
}

// Pair turns one record into a preference pair. Sequences longer than
// MaxLen keep their first MaxLen tokens and, as in OpenRLHF, the last kept
// token becomes EOS, so that a reward model always reads its score at an
// EOS token. A pair whose prompt leaves fewer than two tokens of budget is
// skipped.
func (e *Encoder) Pair(rec Record, k PairKeys) (Pair, bool, error) {
	prompt, chosen, rejected, special, err := e.pairText(rec, k)
	if err != nil {
		return Pair{}, false, err
	}
	margin := 0.0
	if k.MarginKey != "" {
		if margin, err = number(rec, k.MarginKey); err != nil {
			return Pair{}, false, err
		}
	}
	p := Pair{Margin: float32(margin), Pos: rec.Pos}
	var tc, tr bool
	p.Chosen, tc = e.pairSample(prompt, chosen, special)
	p.Rejected, tr = e.pairSample(prompt, rejected, special)
	p.Chosen.Pos, p.Rejected.Pos = rec.Pos, rec.Pos
	for _, s := range []Sample{p.Chosen, p.Rejected} {
		if s.PromptLen() >= e.MaxLen-2 {
			return Pair{}, false, skipError(fmt.Sprintf("prompt too long for max_len %d", e.MaxLen))
		}
	}
	return p, tc || tr, nil
}

// pairSample encodes prompt+response with the response trained on, and
// forces EOS at the end of a truncated sequence.
func (e *Encoder) pairSample(prompt, response string, special bool) (Sample, bool) {
	text := strings.TrimRight(prompt+response, "\n")
	s, truncated := e.encodeMasked(text, []span{{len(prompt), len(text)}}, special)
	if truncated && e.EOS >= 0 {
		s.IDs[len(s.IDs)-1] = e.EOS
	}
	return s, truncated
}

// pairText returns the prompt and the two responses as text.
func (e *Encoder) pairText(rec Record, k PairKeys) (prompt, chosen, rejected string, special bool, err error) {
	var pv Value
	if k.PromptKey != "" {
		if pv, err = field(rec, k.PromptKey); err != nil {
			return
		}
	}
	cv, err := field(rec, k.ChosenKey)
	if err != nil {
		return
	}
	rv, err := field(rec, k.RejectedKey)
	if err != nil {
		return
	}
	if e.Template == nil {
		for key, v := range map[string]Value{k.PromptKey: pv, k.ChosenKey: cv, k.RejectedKey: rv} {
			if v.IsChat {
				err = skipError(fmt.Sprintf("key %q holds messages: use %s", key, chatTemplateFlag))
				return
			}
		}
		if k.PromptKey != "" {
			prompt = e.formatPrompt(pv.Text)
		}
		return prompt, cv.Text, rv.Text, false, nil
	}
	prompt, chosen, rejected, err = e.pairChat(k, pv, asChat(cv, "assistant"), asChat(rv, "assistant"))
	return prompt, chosen, rejected, true, err
}

// pairChat renders a chat pair as OpenRLHF's reward_dataset.py does: the
// prompt is the generation prompt of the prompt turns, each response the
// rest of its rendered conversation.
func (e *Encoder) pairChat(k PairKeys, pv Value, cm, rm []chattmpl.Message) (string, string, string, error) {
	var pm []chattmpl.Message
	switch {
	case k.PromptKey != "":
		pm = asChat(pv, "user")
		cm = append(append([]chattmpl.Message(nil), pm...), cm...)
		rm = append(append([]chattmpl.Message(nil), pm...), rm...)
	case k.DPO && len(cm) > 1:
		pm = cm[:len(cm)-1]
	}
	prompt := ""
	if len(pm) > 0 {
		var err error
		if prompt, err = e.render(pm, true); err != nil {
			return "", "", "", err
		}
	}
	c, err := e.render(cm, false)
	if err != nil {
		return "", "", "", err
	}
	r, err := e.render(rm, false)
	if err != nil {
		return "", "", "", err
	}
	if !strings.HasPrefix(c, prompt) || !strings.HasPrefix(r, prompt) {
		return "", "", "", errNotPrefix
	}
	return prompt, c[len(prompt):], r[len(prompt):], nil
}

// asChat returns a value as messages, wrapping plain text in one message
// of the given role.
func asChat(v Value, role string) []chattmpl.Message {
	if v.IsChat {
		return v.Messages
	}
	return []chattmpl.Message{{Role: role, Content: v.Text}}
}

// SelectPairs returns the pairs at idx.
func SelectPairs(pairs []Pair, idx []int) []Pair {
	out := make([]Pair, len(idx))
	for i, j := range idx {
		out[i] = pairs[j]
	}
	return out
}
