package data

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/chattmpl"
)

// SFTKeys says how to read an SFT record (OpenRLHF's --data.input_key,
// --data.output_key, --data.multiturn, --model.pretrain_mode_enable).
type SFTKeys struct {
	InputKey  string // the prompt, or the whole conversation when OutputKey is ""
	OutputKey string // the response; "" with a chat template: the last turn of InputKey is the response
	// Multiturn trains on every assistant turn of the conversation in
	// InputKey (needs a chat template), not only the last.
	Multiturn bool
	// PretrainMode trains on every token of InputKey (continued
	// pre-training): no prompt, no template, no masking.
	PretrainMode bool
	// Reward conditions each record's input on its score (conditional
	// SFT); the zero value is off.
	Reward RewardConditioning
}

// Validate checks that the keys make sense with or without a chat template.
func (k SFTKeys) Validate(chat bool) error {
	switch {
	case k.InputKey == "":
		return errors.New("data: input key is empty")
	case k.Multiturn && !chat:
		return fmt.Errorf("data: multiturn needs a chat template (%s)", chatTemplateFlag)
	case !k.PretrainMode && !chat && k.OutputKey == "":
		var c Config
		return fmt.Errorf("data: SFT without a chat template needs %s (or --model.pretrain_mode_enable)", cfgflag.Flag(&c, &c.OutputKey))
	case k.PretrainMode && k.Reward.Enabled():
		return fmt.Errorf("data: %s conditions prompts, and pretrain mode has none", cfgflag.Flag(&k.Reward, &k.Reward.Template))
	}
	return k.Reward.Validate()
}

// ReadSFT reads dataset files (see ReadFiles) and turns their records
// into SFT samples; the report covers both stages.
func (e *Encoder) ReadSFT(spec string, maxSamples int, k SFTKeys) ([]Sample, *Report, error) {
	recs, rep, err := ReadFiles(spec, maxSamples)
	if err != nil {
		return nil, nil, err
	}
	if recs, err = k.Reward.Apply(recs, k.InputKey, rep); err != nil {
		return nil, rep, err
	}
	samples, encRep, err := e.SFTSamples(spec, recs, k)
	return withReadReport(rep, samples, encRep, err)
}

// SFTSamples turns records into SFT samples, skipping (and reporting) the
// ones that cannot be used. It fails only when none is usable.
func (e *Encoder) SFTSamples(name string, recs []Record, k SFTKeys) ([]Sample, *Report, error) {
	if err := k.Validate(e.Template != nil); err != nil {
		return nil, nil, err
	}
	return encodeAll(name, recs, func(rec Record) (Sample, bool, error) { return e.SFT(rec, k) })
}

// SFT turns one record into a sample whose loss covers the response
// tokens (every token in pretrain mode, every assistant turn in multiturn
// mode). Sequences longer than MaxLen keep their first MaxLen tokens;
// truncated reports that. A record whose prompt leaves fewer than two
// tokens of budget, or that has no response, is skipped (a skipError).
func (e *Encoder) SFT(rec Record, k SFTKeys) (s Sample, truncated bool, err error) {
	text, spans, special, err := e.sftText(rec, k)
	if err != nil {
		return Sample{}, false, err
	}
	if !k.PretrainMode {
		text = strings.TrimRight(text, "\n") // as OpenRLHF, before the EOS
		for i := range spans {
			spans[i].end = min(spans[i].end, len(text))
		}
	}
	s, truncated = e.encodeMasked(text, spans, special)
	s.Pos = rec.Pos
	if s.LossTokens() == 0 {
		if truncated || s.PromptLen() >= e.MaxLen-2 {
			return Sample{}, false, skipError(fmt.Sprintf("prompt too long for max_len %d", e.MaxLen))
		}
		return Sample{}, false, skipError("empty response")
	}
	return s, truncated, nil
}

// sftText builds the full text of a record and the byte spans to train on.
func (e *Encoder) sftText(rec Record, k SFTKeys) (string, []span, bool, error) {
	in, err := field(rec, k.InputKey)
	if err != nil {
		return "", nil, false, err
	}
	if e.Template == nil {
		if in.IsChat {
			return "", nil, false, skipError(fmt.Sprintf("key %q holds messages: use %s", k.InputKey, chatTemplateFlag))
		}
		if k.PretrainMode {
			return in.Text, []span{{0, len(in.Text)}}, false, nil
		}
		out, err := field(rec, k.OutputKey)
		if err != nil {
			return "", nil, false, err
		}
		if out.IsChat {
			return "", nil, false, skipError(fmt.Sprintf("key %q holds messages: use %s", k.OutputKey, chatTemplateFlag))
		}
		prompt := e.formatPrompt(in.Text)
		return prompt + out.Text, []span{{len(prompt), len(prompt) + len(out.Text)}}, false, nil
	}
	msgs, respFrom, err := e.conversation(rec, in, k)
	if err != nil {
		return "", nil, false, err
	}
	full, err := e.render(msgs, false)
	if err != nil {
		return "", nil, false, err
	}
	if k.PretrainMode {
		return full, []span{{0, len(full)}}, true, nil
	}
	if !k.Multiturn {
		// Everything after the generation prompt of the prompt turns.
		prompt, err := e.render(msgs[:respFrom], true)
		if err != nil {
			return "", nil, false, err
		}
		if !strings.HasPrefix(full, prompt) {
			return "", nil, false, errNotPrefix
		}
		return full, []span{{len(prompt), len(full)}}, true, nil
	}
	var spans []span
	for i := range msgs {
		if msgs[i].Role != "assistant" {
			continue
		}
		sp, err := e.turnSpan(msgs, i, full)
		if err != nil {
			return "", nil, false, err
		}
		spans = append(spans, sp)
	}
	if len(spans) == 0 {
		return "", nil, false, skipError("no assistant turn to train on")
	}
	return full, spans, true, nil
}

// conversation returns the messages of a chat record and the index of the
// first response message (the last message when there is no output key).
func (e *Encoder) conversation(rec Record, in Value, k SFTKeys) ([]chattmpl.Message, int, error) {
	msgs := in.Messages
	if !in.IsChat {
		msgs = []chattmpl.Message{{Role: "user", Content: in.Text}}
	}
	if k.OutputKey == "" {
		if len(msgs) < 2 && !k.Multiturn {
			return nil, 0, skipError("conversation needs a prompt and a response turn")
		}
		return msgs, len(msgs) - 1, nil
	}
	out, err := field(rec, k.OutputKey)
	if err != nil {
		return nil, 0, err
	}
	resp := out.Messages
	if !out.IsChat {
		resp = []chattmpl.Message{{Role: "assistant", Content: out.Text}}
	}
	all := append(append([]chattmpl.Message(nil), msgs...), resp...)
	return all, len(msgs), nil
}

// errNotPrefix skips a conversation whose template rendering of a prefix
// is not a prefix of the whole rendering (the response cannot be located).
var errNotPrefix = skipError("chat template output for a prefix of the conversation is not a prefix of the whole")

// turnSpan locates assistant turn i inside the rendered conversation full:
// it starts where the template's generation prompt for msgs[:i] ends and
// ends where the rendering of msgs[:i+1] ends (OpenRLHF's response_ranges).
func (e *Encoder) turnSpan(msgs []chattmpl.Message, i int, full string) (span, error) {
	prompt, err := e.render(msgs[:i], true)
	if err != nil {
		return span{}, err
	}
	upTo, err := e.render(msgs[:i+1], false)
	if err != nil {
		return span{}, err
	}
	if !strings.HasPrefix(full, prompt) || !strings.HasPrefix(upTo, prompt) {
		return span{}, errNotPrefix
	}
	end := len(upTo)
	if !strings.HasPrefix(full, upTo) {
		// Templates that render the final turn differently (e.g. Qwen3
		// dropping past thinking) still share the generation prompt.
		end = len(full)
		if i != len(msgs)-1 {
			return span{}, errNotPrefix
		}
	}
	return span{len(prompt), end}, nil
}
