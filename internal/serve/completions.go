package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorlhf/gorlhf/internal/generate"
)

// completionRequest is the body of POST /v1/completions.
type completionRequest struct {
	samplingFields
	Prompt    json.RawMessage `json:"prompt"`
	MaxTokens *int            `json:"max_tokens"`
	Logprobs  *int            `json:"logprobs"` // top alternatives per token, 0…20
	Echo      bool            `json:"echo"`
	Suffix    *string         `json:"suffix"`
	BestOf    *int            `json:"best_of"`
	// ReturnTokenIDs adds prompt_token_ids and token_ids to every choice
	// (vLLM's extension).
	ReturnTokenIDs bool `json:"return_token_ids"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
	// WeightVersion produced every choice (the engine loads weights only
	// between requests).
	WeightVersion int64 `json:"weight_version"`
}

type completionChoice struct {
	Index        int             `json:"index"`
	Text         string          `json:"text"`
	Logprobs     *legacyLogprobs `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
	// with return_token_ids
	PromptTokenIDs []int32 `json:"prompt_token_ids,omitempty"`
	TokenIDs       []int32 `json:"token_ids,omitempty"`
}

// legacyLogprobs is the completions API's log-prob layout.
type legacyLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if !s.decode(w, r, &req) {
		return
	}
	reqs, err := s.completionRequests(&req)
	if err != nil {
		s.fail(w, err)
		return
	}
	id := s.newID("cmpl")
	if req.Stream {
		s.stream(w, r, reqs, &streamFormat{id: id, chat: false, usage: req.includeUsage(), logprobs: req.Logprobs != nil})
		return
	}
	res, err := s.eng.Generate(r.Context(), reqs)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := completionResponse{ID: id, Object: "text_completion", Created: time.Now().Unix(), Model: s.opt.ModelName, Usage: &usage{},
		WeightVersion: s.eng.Stats().WeightVersion}
	for i, rs := range res {
		out.Usage.PromptTokens += rs.PromptTokens
		for _, c := range rs.Completions {
			ch := completionChoice{Index: i*len(rs.Completions) + c.Index, Text: c.Text, FinishReason: finish(c.FinishReason)}
			if req.Logprobs != nil {
				ch.Logprobs = s.legacyLogprobs(s.tokenTexts(reqs[i].Prompt), &c)
			}
			if req.ReturnTokenIDs {
				ch.PromptTokenIDs, ch.TokenIDs = reqs[i].Prompt, nonNil(c.Tokens)
			}
			out.WeightVersion = c.WeightVersion
			out.Choices = append(out.Choices, ch)
			out.Usage.CompletionTokens += len(c.Tokens)
		}
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens + out.Usage.CompletionTokens
	w.Header().Set(WeightVersionHeader, strconv.FormatInt(out.WeightVersion, 10))
	writeJSON(w, http.StatusOK, out)
}

// nonNil keeps an empty id list a JSON list.
func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

// completionRequests validates the body and builds one engine request per
// prompt.
func (s *Server) completionRequests(req *completionRequest) ([]generate.Request, error) {
	switch {
	case req.Echo:
		return nil, perr("echo", "is not supported")
	case req.Suffix != nil && *req.Suffix != "":
		return nil, perr("suffix", "is not supported")
	case req.BestOf != nil && (req.N == nil && *req.BestOf != 1 || req.N != nil && *req.BestOf != *req.N):
		return nil, perr("best_of", "must equal n (no server-side ranking)")
	}
	maxTokens, lengthParam, err := s.requestedTokens(16, tokenField{"max_tokens", req.MaxTokens}) // OpenAI's default: 16
	if err != nil {
		return nil, err
	}
	top := 0
	if req.Logprobs != nil {
		if *req.Logprobs < 0 || *req.Logprobs > generate.MaxTopLogProbs {
			return nil, perr("logprobs", "must be in [0, %d], got %d", generate.MaxTopLogProbs, *req.Logprobs)
		}
		top = *req.Logprobs
	}
	p, err := req.sampling(maxTokens, top)
	if err != nil {
		return nil, err
	}
	prompts, err := s.prompts(req.Prompt)
	if err != nil {
		return nil, err
	}
	return s.engineRequests(prompts, p, lengthParam, "prompt")
}

// engineRequests pairs prompts with parameters and validates each against
// the model's context (fitContext) and the engine.
func (s *Server) engineRequests(prompts [][]int32, p generate.SamplingParams, lengthParam, promptParam string) ([]generate.Request, error) {
	reqs := make([]generate.Request, len(prompts))
	for i, ids := range prompts {
		reqs[i] = generate.Request{ID: fmt.Sprint(i), Prompt: ids, Params: p}
		if err := s.fitContext(&reqs[i], i, lengthParam, promptParam); err != nil {
			return nil, err
		}
		if err := s.eng.Validate(reqs[i]); err != nil {
			return nil, engineError(i, err)
		}
	}
	return reqs, nil
}

// legacyLogprobs lays out the tokens of c in the completions API's shape;
// tt decodes them after the prompt and the tokens before them.
func (s *Server) legacyLogprobs(tt *tokenTexts, c *generate.Completion) *legacyLogprobs {
	lp := &legacyLogprobs{Tokens: []string{}, TokenLogprobs: []float32{}, TextOffset: []int{}}
	for i, id := range c.Tokens {
		if c.TopLogProbs != nil {
			lp.TopLogprobs = append(lp.TopLogprobs, tt.topMap(c.TopLogProbs[i]))
		}
		text, off := tt.next(id)
		lp.Tokens = append(lp.Tokens, text)
		lp.TokenLogprobs = append(lp.TokenLogprobs, c.RawLogProbs[i])
		lp.TextOffset = append(lp.TextOffset, off)
	}
	return lp
}

// errDraining answers a request the server stopped because it is shutting
// down (Drain).
var errDraining = errors.New("serve: the server is shutting down")

func finish(r generate.FinishReason) *string {
	s := string(r)
	return &s
}

// fail answers an error: 400 for bad parameters, 503 when the engine is
// closed or the server drains, 499-style silence when the client went
// away, 500 otherwise.
func (s *Server) fail(w http.ResponseWriter, err error) {
	var pe *paramError
	var le *lengthError
	switch {
	case errors.As(err, &le):
		le.write(w)
	case errors.As(err, &pe):
		badRequest(w, pe.param, err)
	case errors.Is(err, generate.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "server_error", "the engine is shutting down", "")
	case errors.Is(err, errDraining):
		writeError(w, http.StatusServiceUnavailable, "server_error", "the server is shutting down", "")
	case errors.Is(err, context.Canceled):
		// The client is gone; nobody reads the answer.
	default:
		s.opt.Logger.Error("serve: request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", err.Error(), "")
	}
}
