// Package prmodel is the reward source backed by a process reward model
// (a causal LM trained by gorlhf train prm, or one like Math-Shepherd's):
// a response is split into steps, each step ends with the step tag, the
// model's probability of the positive reward token at each tag is the
// step's score, and the steps' scores are aggregated into the reward
// (min, prod, mean or last). It also holds what the PRM trainer and its
// users share: the prm.json file next to a trained PRM (Spec) and the
// rule that turns a token string into its one id (TokenID).
package prmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Spec is what a PRM needs besides its weights to be used: written as
// prm.json in its folder.
type Spec struct {
	PlaceholderToken string   `json:"placeholder_token"`
	RewardTokens     []string `json:"reward_tokens,omitempty"`
}

// SpecFile is the name of the file WriteSpec writes in a model folder.
const SpecFile = "prm.json"

// WriteSpec writes s as dir/prm.json.
func WriteSpec(dir string, s Spec) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, SpecFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("prmodel: write %s: %w", SpecFile, err)
	}
	return nil
}

// ReadSpec reads dir/prm.json.
func ReadSpec(dir string) (Spec, error) {
	var s Spec
	b, err := os.ReadFile(filepath.Join(dir, SpecFile))
	if err != nil {
		return s, fmt.Errorf("prmodel: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("prmodel: %s: %w", filepath.Join(dir, SpecFile), err)
	}
	return s, nil
}

// IsPRM reports whether dir is a model folder with a prm.json.
func IsPRM(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, SpecFile))
	return err == nil && st.Mode().IsRegular()
}

// TokenID returns the id of s as one token. OpenRLHF asks the tokenizer
// to encode s without special tokens and requires one id; a
// SentencePiece-style tokenizer puts a dummy-prefix space in front of a
// document ("+" encodes as "▁" "+"), so s is also tried as a continuation
// of earlier text, which is how a step tag or a reward token sits inside
// a sequence.
func TokenID(tok tokenizer.Tokenizer, s string) (int32, error) {
	if s == "" {
		return 0, errors.New("empty token")
	}
	ids := tok.Encode(s)
	if len(ids) == 1 {
		return int32(ids[0]), nil
	}
	if c := tokenizer.EncodeContinuation(tok, s, tokenizer.EncodeOptions{}); len(c) == 1 {
		return int32(c[0]), nil
	}
	return 0, fmt.Errorf("%q is %d tokens (%v), not one: pick a string the tokenizer keeps whole", s, len(ids), ids)
}
