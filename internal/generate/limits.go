package generate

import (
	"fmt"
	"math"
)

// LengthError is a request that does not fit the model's context: its
// prompt, or its prompt plus the new tokens it asks for, passes the
// model's position limit. Its message is vLLM's, so that clients which
// recognise that one recognise this one.
type LengthError struct {
	Limit      int // the model's context length in tokens (positions)
	Prompt     int // prompt tokens
	Completion int // new tokens asked for; 0 when the prompt alone is too long
}

func (e *LengthError) Error() string {
	if e.Completion == 0 {
		return fmt.Sprintf("This model's maximum context length is %d tokens. However, your prompt has %d tokens, "+
			"which leaves no room for a completion within that limit. Please reduce the length of the prompt.", e.Limit, e.Prompt)
	}
	return fmt.Sprintf("This model's maximum context length is %d tokens. However, you requested %d tokens "+
		"(%d in the prompt, %d in the completion). Please reduce the length of the prompt or completion.",
		e.Limit, e.Prompt+e.Completion, e.Prompt, e.Completion)
}

// Room is how many new tokens fit after a prompt of n tokens: the
// position limit minus n (≤ 0: none), or math.MaxInt without a limit.
func (e *Engine) Room(n int) int {
	if e.rules.limit == 0 {
		return math.MaxInt
	}
	return e.rules.limit - n
}

// CheckLength refuses a request whose prompt plus MaxNewTokens (its
// default filled in) pass the position limit, with a *LengthError.
//
// Generate itself accepts such a request (only a prompt that fills the
// context is refused) and ends its samples with FinishLength at the
// limit, which is what a trainer's rollouts want. Front ends that take a
// length from a user (the generate command, the HTTP server) call
// CheckLength first, as vLLM's server refuses max_tokens past the
// context.
func (e *Engine) CheckLength(r Request) error {
	n, maxNew := len(r.Prompt), r.Params.withDefaults().MaxNewTokens
	switch room := e.Room(n); {
	case room <= 0:
		return &LengthError{Limit: e.rules.limit, Prompt: n}
	case maxNew > room:
		return &LengthError{Limit: e.rules.limit, Prompt: n, Completion: maxNew}
	}
	return nil
}

// FitLength holds r to the context the way the front ends do: a
// MaxNewTokens the user chose (chosen) must fit after the prompt
// (CheckLength); a default one is lowered to what fits. A prompt that
// fills the context is an error either way.
func (e *Engine) FitLength(r *Request, chosen bool) error {
	if !chosen {
		r.Params.MaxNewTokens = max(1, min(r.Params.withDefaults().MaxNewTokens, e.Room(len(r.Prompt))))
	}
	return e.CheckLength(*r)
}
