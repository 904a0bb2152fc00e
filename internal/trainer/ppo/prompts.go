package ppo

import (
	"github.com/gorlhf/gorlhf/internal/data"
)

// Prompt is one dataset prompt, ready for the rollout engine: its text
// (templates applied), its tokens and its label.
type Prompt = data.Prompt

// promptReader reads prompt datasets with the policy's prompt encoder
// (data.PromptEncoder, OpenRLHF's PromptDataset).
type promptReader struct {
	enc  data.PromptEncoder
	keys data.PromptKeys
}

// newPromptEncoder returns the reader for d: the chat template when
// --data.apply_chat_template is set (plain prompts then become user
// messages), the input template otherwise, BOS first unless rt.NoBOS,
// and at most budget tokens.
func newPromptEncoder(rt Runtime, d DataConfig, budget int) (*promptReader, error) {
	r := &promptReader{enc: data.PromptEncoder{Tok: rt.Tok, InputTemplate: d.InputTemplate, BOS: rt.bos(), MaxTokens: budget},
		keys: data.PromptKeys{InputKey: d.InputKey, LabelKey: d.LabelKey}}
	if d.ApplyChatTemplate {
		r.enc.Template, r.enc.ChatText = rt.Template, true
	}
	if err := r.enc.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// read reads the prompts of the comma-separated files of spec (at most max
// records; 0 = all). Records that cannot be used are skipped and counted
// in the report; none usable is an error.
func (r *promptReader) read(spec string, max int) ([]Prompt, *data.Report, error) {
	return r.enc.ReadPrompts(spec, max, r.keys)
}

// bos is the id prompts start with, −1 for none.
func (rt Runtime) bos() int32 {
	if rt.NoBOS {
		return -1
	}
	return int32(rt.Tok.Specials().BOS)
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
