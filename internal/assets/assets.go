// Package assets embeds the default tiny model so that gorlhf works out of
// the box, with no download and no files next to the binary.
//
// The model is stories260K (Karpathy's tinyllamas), a real pretrained
// Llama-architecture network of about 260 thousand parameters, stored in the
// llama2.c legacy checkpoint layout, plus its 512-token SentencePiece-style
// vocabulary and a greedy-decoding reference used by tests. Provenance and
// licenses are in stories260K/README.md. The bytes returned are shared with
// the binary image: callers must not modify them.
package assets

import _ "embed"

//go:embed stories260K/stories260K.bin
var stories260K []byte

//go:embed stories260K/tok512.bin
var tok512 []byte

//go:embed stories260K/reference_greedy.json
var referenceGreedy []byte

// Stories260K returns the llama2.c legacy checkpoint of stories260K
// (dim 64, 5 layers, 8 heads, 4 KV heads, vocab 512, shared classifier).
// Parse it with package llama2c. The slice must not be modified.
func Stories260K() []byte { return stories260K }

// Tok512 returns the llama2.c tokenizer file that goes with Stories260K:
// int32 max token length, then 512 records of float32 score, int32 length
// and the token bytes. The slice must not be modified.
func Tok512() []byte { return tok512 }

// ReferenceGreedy returns a JSON document with the expected greedy decoding
// of Stories260K from BOS (id 1): keys prompt_ids, greedy_ids, text and
// pos0_logits (all 512 logits at position 0). Tests use it as the golden
// output of the model code. The slice must not be modified.
func ReferenceGreedy() []byte { return referenceGreedy }
