package sft

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model"
)

// Greedy continues ids with the most likely token, one full forward pass
// per new token (no KV cache: this is for showing a few samples, not
// serving), until EOS, maxNew tokens, or maxLen tokens in all. It returns
// the new tokens.
func Greedy(m model.CausalLM, ids []int32, eos int32, maxNew, maxLen int) []int32 {
	seq := append([]int32(nil), ids...)
	var out []int32
	for len(out) < maxNew && len(seq) < maxLen {
		pos := make([]int32, len(seq))
		for i := range pos {
			pos[i] = int32(i)
		}
		logits := m.Forward(nil, seq, pos, nil, 1, len(seq))
		v := logits.Dim(-1)
		last := logits.Data[(len(seq)-1)*v : len(seq)*v]
		best := 0
		for j, x := range last {
			if x > last[best] {
				best = j
			}
		}
		next := int32(best)
		out = append(out, next)
		seq = append(seq, next)
		if next == eos {
			break
		}
	}
	return out
}

// writeSamples writes greedy completions of the first eval prompts (train
// prompts when there is no eval set) to <output_dir>/samples.txt and the log.
func (t *Trainer) writeSamples() error {
	src := t.eval
	if len(src) == 0 {
		src = t.train
	}
	n := min(t.cfg.Samples, len(src))
	if n == 0 || t.cfg.PretrainMode {
		return nil
	}
	var b strings.Builder
	for _, s := range src[:n] {
		prompt := s.IDs[:s.PromptLen()]
		gen := Greedy(t.model, prompt, int32(t.env.Tok.Specials().EOS), t.cfg.SampleTokens, t.env.SeqLimit(t.cfg.Data.MaxLen))
		p, g := t.env.Tok.Decode(ints(prompt)), t.env.Tok.Decode(ints(gen))
		ref := t.env.Tok.Decode(ints(responseIDs(s)))
		t.s.Log.Info("sample", "at", s.Pos.String(), "prompt", p, "completion", g)
		fmt.Fprintf(&b, "### %s\n--- prompt\n%s\n--- completion (greedy, step %d)\n%s\n--- reference\n%s\n\n", s.Pos, p, t.s.Step(), g, ref)
	}
	return os.WriteFile(filepath.Join(t.cfg.Train.Ckpt.OutputDir, "samples.txt"), []byte(b.String()), 0o644)
}

// responseIDs returns the trained-on tokens of a sample.
func responseIDs(s data.Sample) []int32 {
	var out []int32
	for i, l := range s.Loss {
		if l {
			out = append(out, s.IDs[i])
		}
	}
	return out
}

func ints(ids []int32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}
