package generate

import (
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// TextDecoder turns token ids into text; tokenizer.Tokenizer is one. The
// engine needs it only for stop strings and Completion.Text, which it
// decodes after the prompt (tokenizer.DecodeContinuation), so a
// SentencePiece tokenizer keeps the completion's leading space.
type TextDecoder = tokenizer.Decoder

// sampleState is one completion being generated. The engine and the naive
// twin share it, so both apply exactly the same stop rules.
type sampleState struct {
	params *SamplingParams // the request's, defaults filled in
	prompt []int32         // the request's; the text is decoded after it
	ctx    []int           // prompt as ints, made when text is first decoded
	rng    *rand.Rand
	comp   Completion
	done   bool
	cut    int // byte offset of the stop string in the text, −1 if none
}

func newSampleState(p *SamplingParams, prompt []int32, index int, version int64) *sampleState {
	return &sampleState{params: p, prompt: prompt, rng: sampleRNG(p.Seed, index), cut: -1,
		comp: Completion{Index: index, WeightVersion: version}}
}

// text decodes toks, generated ids, in the context of the prompt.
func (s *sampleState) text(dec TextDecoder, toks []int32) string {
	if s.ctx == nil {
		s.ctx = toInts(s.prompt)
	}
	return tokenizer.DecodeContinuation(dec, s.ctx, toInts(toks))
}

// draw returns the next uniform draw of this sample's generator.
func (s *sampleState) draw() float64 { return s.rng.Float64() }

// stopRules are the engine-wide parts of the stop test.
type stopRules struct {
	eos   []int32     // ends every sample unless IgnoreEOS
	dec   TextDecoder // nil: no stop strings, no Text
	limit int         // the model's position limit; 0: none
}

// accept appends a drawn token and decides whether the sample is done.
// total is the sequence length (prompt + generated) after the token.
func (s *sampleState) accept(x sampled, total int, r *stopRules) {
	c := &s.comp
	c.Tokens = append(c.Tokens, x.token)
	c.LogProbs = append(c.LogProbs, x.logProb)
	c.RawLogProbs = append(c.RawLogProbs, x.raw)
	if s.params.TopLogProbs > 0 {
		c.TopLogProbs = append(c.TopLogProbs, x.top)
	}
	switch {
	case slices.Contains(s.params.StopTokenIDs, x.token) || (!s.params.IgnoreEOS && slices.Contains(r.eos, x.token)):
		s.finish(FinishStop, r)
	case len(s.params.StopStrings) > 0 && r.dec != nil && s.findStop(r.dec):
		s.finish(FinishStop, r)
	case len(c.Tokens) >= s.params.MaxNewTokens || (r.limit > 0 && total >= r.limit):
		s.finish(FinishLength, r)
	}
}

// findStop reports whether the text so far contains a stop string and
// records where the earliest one starts.
func (s *sampleState) findStop(dec TextDecoder) bool {
	text := s.text(dec, s.comp.Tokens)
	for _, st := range s.params.StopStrings {
		if i := strings.Index(text, st); i >= 0 && (s.cut < 0 || i < s.cut) {
			s.cut = i
		}
	}
	return s.cut >= 0
}

// finish ends the sample and fills Text.
func (s *sampleState) finish(reason FinishReason, r *stopRules) {
	s.done = true
	s.comp.FinishReason = reason
	if r.dec == nil {
		return
	}
	toks := s.comp.Tokens
	if n := len(toks); n > 0 && s.cut < 0 && reason == FinishStop {
		toks = toks[:n-1] // the stop token id is not text
	}
	s.comp.Text = s.text(r.dec, toks)
	if s.cut >= 0 && s.cut <= len(s.comp.Text) {
		s.comp.Text = s.comp.Text[:s.cut]
	}
}

func toInts(ids []int32) []int {
	out := make([]int, len(ids))
	for i, v := range ids {
		out[i] = int(v)
	}
	return out
}
