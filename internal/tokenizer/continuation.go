package tokenizer

import "slices"

// continuationAnchor is the text EncodeContinuation encodes in front of a
// continuation: a newline is a token of its own (or a byte-fallback
// token) in every tokenizer family this package reads, so it rarely
// merges with what follows.
const continuationAnchor = "\n"

// EncodeContinuation returns the ids of text as a continuation of earlier
// text: what text adds when it is appended to a sequence that already has
// tokens. Encode treats text as the start of a document, so a
// SentencePiece-style tokenizer (Llama 2, llama2.c, Mistral) puts its
// dummy-prefix space in front ("27" encodes as "▁" "2" "7"), which is wrong
// in the middle of a conversation: a multi-turn rollout appends each
// environment reply to the tokens generated so far, and a stray space per
// turn would change the text the model reads.
//
// It encodes anchor+text and drops the anchor's ids, where anchor is a
// newline. When the anchor's ids are not a prefix of the result (the
// anchor merged with text's first characters, as GPT-2's "\n\n" does), it
// falls back to Encode, which is then already right for byte-level
// tokenizers without add_prefix_space.
func EncodeContinuation(tok Tokenizer, text string, o EncodeOptions) []int {
	if text == "" {
		return nil
	}
	anchor := tok.EncodeWith(continuationAnchor, o)
	ids := tok.EncodeWith(continuationAnchor+text, o)
	if len(ids) > len(anchor) && slices.Equal(ids[:len(anchor)], anchor) {
		return ids[len(anchor):]
	}
	return tok.EncodeWith(text, o)
}
