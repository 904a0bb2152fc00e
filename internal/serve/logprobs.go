package serve

import (
	"strconv"
	"unicode/utf8"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// tokenTexts gives the generated tokens of one choice their text for the
// logprobs: what each adds after the prompt and the tokens before it
// (tokenizer.Detokenizer), so that the tokens' texts add up to the
// choice's text, leading spaces included, and text_offset indexes it. A
// token that ends inside a character gets "" and the token that completes
// the character gets all of it, as in vLLM.
type tokenTexts struct {
	det   *tokenizer.Detokenizer
	chars int // characters (code points) of the choice's text so far
}

func (s *Server) tokenTexts(prompt []int32) *tokenTexts {
	return &tokenTexts{det: tokenizer.NewDetokenizer(s.tok, toInts(prompt))}
}

// next returns the text of the next token and its offset in the choice's
// text, in characters (Python's str indices, as OpenAI's text_offset).
func (tt *tokenTexts) next(id int32) (text string, offset int) {
	offset = tt.chars
	text = tt.det.Next(int(id))
	tt.chars += utf8.RuneCountInString(text)
	return text, offset
}

// alt returns the text token id would have had in place of the next one
// (U+FFFD where it would leave a character incomplete). Call it before
// next.
func (tt *tokenTexts) alt(id int32) string { return tt.det.Peek(int(id)) }

// topMap keys the alternatives of one step by their text. Two tokens may
// decode to the same text (the byte tokens of an unfinished character all
// read U+FFFD): the more likely keeps the text and the others are keyed
// "token_id:ID", vLLM's spelling for tokens given by id, so that no
// alternative is lost and the keys never depend on map order.
func (tt *tokenTexts) topMap(top []generate.TokenLogProb) map[string]float32 {
	m := make(map[string]float32, len(top))
	for _, t := range top { // most likely first
		key := tt.alt(t.Token)
		if _, taken := m[key]; taken {
			key = "token_id:" + strconv.Itoa(int(t.Token))
		}
		m[key] = t.LogProb
	}
	return m
}

func toInts(ids []int32) []int {
	out := make([]int, len(ids))
	for i, v := range ids {
		out[i] = int(v)
	}
	return out
}
