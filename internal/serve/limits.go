package serve

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gorlhf/gorlhf/internal/generate"
)

// tokenField is a request field that sets the length limit (max_tokens,
// max_completion_tokens); v is nil when absent.
type tokenField struct {
	param string
	v     *int
}

// requestedTokens is a request's length limit: the last of fields that is
// set (param names it), or def, lowered to the server's MaxTokensLimit
// (param ""). A set value must be in [1, MaxTokensLimit].
func (s *Server) requestedTokens(def int, fields ...tokenField) (n int, param string, err error) {
	limit := s.opt.MaxTokensLimit
	n = def
	if limit > 0 {
		n = min(n, limit)
	}
	for _, f := range fields {
		switch {
		case f.v == nil:
			continue
		case *f.v < 1:
			return 0, "", perr(f.param, "must be ≥ 1, got %d", *f.v)
		case limit > 0 && *f.v > limit:
			return 0, "", perr(f.param, "must be ≤ %d (this server's --max-tokens-limit), got %d", limit, *f.v)
		}
		n, param = *f.v, f.param
	}
	return n, param, nil
}

// fitContext checks one engine request against the model's context. A
// length the client set (lengthParam ≠ "") must fit after the prompt, as
// vLLM's server requires; a default one is lowered to what fits. A prompt
// that leaves no room is refused either way; promptParam names the field
// that holds it.
func (s *Server) fitContext(r *generate.Request, i int, lengthParam, promptParam string) error {
	var le *generate.LengthError
	if err := s.eng.FitLength(r, lengthParam != ""); errors.As(err, &le) {
		param := lengthParam
		if le.Completion == 0 || param == "" {
			param = promptParam
		}
		return &lengthError{param: param, prompt: i, err: le}
	}
	return nil
}

// lengthError is a request past the model's context: a 400 with OpenAI's
// code context_length_exceeded and vLLM's message.
type lengthError struct {
	param  string
	prompt int // which prompt of a completions request
	err    *generate.LengthError
}

func (e *lengthError) Error() string {
	if e.prompt > 0 {
		return fmt.Sprintf("prompt %d: %v", e.prompt, e.err)
	}
	return e.err.Error()
}

func (e *lengthError) Unwrap() error { return e.err }

func (e *lengthError) write(w http.ResponseWriter) {
	code := "context_length_exceeded"
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": apiError{Message: e.Error(), Type: "invalid_request_error", Param: &e.param, Code: &code}})
}
