// Package serve exposes a generate.Engine over HTTP with the OpenAI API
// shapes most clients speak: POST /v1/completions, POST
// /v1/chat/completions (with the model's chat template), server-sent-event
// streaming, GET /v1/models and GET /health.
//
// It exists so that evaluation harnesses, agents and remote RL workers can
// drive gorlhf's rollout engine without Go. Every HTTP request becomes
// engine requests, so concurrent clients are batched together by the
// engine's scheduler. Errors use OpenAI's JSON shape with 4xx codes for
// bad requests; nothing a client sends can panic the server.
//
// Lengths: a prompt that fills the model's context, or a max_tokens that
// does not fit after the prompt, is a 400 with code
// context_length_exceeded and vLLM's message; an unset max_tokens is
// lowered to what fits; Options.MaxTokensLimit caps what one request may
// ask for.
//
// Extensions (as vLLM accepts them): top_k, min_p, stop_token_ids,
// ignore_eos and return_token_ids (each completion choice then carries
// prompt_token_ids and token_ids; a final stop token is in token_ids, as
// the engine generated it); completions report the weight version that
// produced them ("weight_version", and the X-Weight-Version header, which
// every answer carries). A seed is any integer in [−2⁶³, 2⁶⁴): the
// request's sample i draws exactly as the in-process engine does for
// (seed, i). Logprobs are the raw model's (temperature 1, no filter), as
// vLLM's default logprobs mode.
//
// RL control (control.go, weights.go): POST /pause, /resume, GET
// /is_paused (vLLM), POST /update_weights_from_disk and GET
// /get_weight_version (SGLang), and vLLM's weight-transfer routes with a
// "disk" backend. Not supported (rejected with 400 when set to a non-default):
// echo, suffix, best_of ≠ n, penalties, logit_bias, tools.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/httpauth"
	"github.com/gorlhf/gorlhf/internal/httpjson"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Options configures a Server. The zero value serves "gorlhf" without
// authentication.
type Options struct {
	// ModelName is the id reported by /v1/models and echoed in responses;
	// "" means "gorlhf". Requests may name any model (a single model is
	// served).
	ModelName string
	// APIKey, when set, is required as "Authorization: Bearer <key>" (the
	// scheme in any case) on /v1/ routes and the control and weight
	// routes (/health stays open).
	APIKey string
	// Template is the chat template; nil makes /v1/chat/completions answer
	// 400, or 500 naming TemplateError when that is set and is not
	// chattmpl.ErrNoTemplate (the model's template does not parse).
	Template      *chattmpl.Template
	TemplateError error
	// BOS is put first in prompts given as text and in rendered chats
	// that do not start with it (load.Bundle.BOS; −1: none). Prompts are
	// encoded by data.PromptEncoder, as the RL trainer and generate do.
	BOS int
	// ChatMaxTokens is the length limit of a chat request that sets none;
	// 0 means generate.DefaultMaxNewTokens. (Completions default to 16, as
	// OpenAI's.)
	ChatMaxTokens int
	// MaxTokensLimit caps the length a request may ask for (max_tokens,
	// max_completion_tokens): more is refused with 400, and a request that
	// sets none gets at most this many. 0 means no cap but the model's
	// context length, which always applies: a length the client sets must
	// fit after its prompt (400 context_length_exceeded, as vLLM), a
	// default one is lowered to what fits.
	MaxTokensLimit int
	// MaxBodyBytes caps request bodies; 0 means 8 MiB.
	MaxBodyBytes int64
	// Logger gets one line per failed request; nil means slog.Default().
	Logger *slog.Logger
}

// Server answers OpenAI-style requests with an engine. It is safe for
// concurrent use; create it with New.
type Server struct {
	eng     *generate.Engine
	tok     tokenizer.Tokenizer
	enc     *data.PromptEncoder
	opt     Options
	created int64
	seq     atomic.Uint64 // response ids

	draining context.Context // ends when Drain is called
	drain    context.CancelFunc

	gate   *gate        // /pause, /resume
	update weightUpdate // vLLM-style weight transfer in progress
	loadMu sync.Mutex   // one weight load at a time; guards spare
	spare  map[string][]float32
}

// New returns a server for e; tok decodes and encodes text.
func New(e *generate.Engine, tok tokenizer.Tokenizer, o Options) *Server {
	if o.ModelName == "" {
		o.ModelName = "gorlhf"
	}
	if o.ChatMaxTokens == 0 {
		o.ChatMaxTokens = generate.DefaultMaxNewTokens
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 8 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	enc := &data.PromptEncoder{Tok: tok, Template: o.Template, BOS: int32(o.BOS)}
	s := &Server{eng: e, tok: tok, enc: enc, opt: o, created: time.Now().Unix(), gate: newGate()}
	s.draining, s.drain = context.WithCancel(context.Background())
	return s
}

// Drain stops the chat-template renderings in flight (they answer 503)
// and makes later ones stop at once; requests already generating go on.
// Call it when shutdown begins (http.Server.RegisterOnShutdown), so that
// Shutdown, which waits for every handler, is never held by a template
// that runs away. It is safe to call more than once.
func (s *Server) Drain() { s.drain() }

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.health)
	mux.Handle("/v1/models", s.auth(http.HandlerFunc(s.models)))
	mux.Handle("/v1/completions", s.auth(s.generation(s.completions)))
	mux.Handle("/v1/chat/completions", s.auth(s.generation(s.chat)))
	// control (control.go) and weight updates (weights.go)
	for path, h := range map[string]http.HandlerFunc{
		"/pause": s.pause, "/resume": s.resume, "/is_paused": s.isPaused, "/get_weight_version": s.weightVersion,
		"/update_weights_from_disk": s.updateFromDisk, "/init_weight_transfer_engine": s.initWeightTransfer,
		"/start_weight_update": s.startWeightUpdate, "/update_weights": s.updateWeights,
		"/finish_weight_update": s.finishWeightUpdate, "/get_world_size": s.worldSize,
	} {
		mux.Handle(path, s.auth(h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path), "")
	})
	return s.versioned(mux)
}

// auth checks the bearer token when an API key is configured.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.opt.APIKey == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpauth.Valid(r, s.opt.APIKey) {
			httpauth.Challenge(w)
			writeError(w, http.StatusUnauthorized, "authentication_error", "missing or invalid API key (send Authorization: Bearer <key>)", "invalid_api_key")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model": s.opt.ModelName, "weight_version": s.eng.Stats().WeightVersion})
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, "GET")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{
		{"id": s.opt.ModelName, "object": "model", "created": s.created, "owned_by": "gorlhf"},
	}})
}

// decodeOptional is decode for routes whose JSON body may be left out (a
// POST with no body leaves v as it is).
func (s *Server) decodeOptional(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.Method == http.MethodPost && r.ContentLength == 0 {
		return true
	}
	return s.decode(w, r, v)
}

// decode reads a JSON body into v, rejecting unknown-shape input with a 400.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, "POST")
		return false
	}
	body := http.MaxBytesReader(w, r.Body, s.opt.MaxBodyBytes)
	if err := httpjson.DecodeOne(body, v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", fmt.Sprintf("request body over %d bytes", s.opt.MaxBodyBytes), "")
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid JSON body: "+err.Error(), "")
		return false
	}
	return true
}

func (s *Server) newID(prefix string) string {
	return fmt.Sprintf("%s-%x%06d", prefix, s.created, s.seq.Add(1))
}

// apiError is OpenAI's error object.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, typ, msg, code string) {
	e := apiError{Message: msg, Type: typ}
	if code != "" {
		e.Code = &code
	}
	writeJSON(w, status, map[string]any{"error": e})
}

// badRequest answers 400 naming the offending parameter.
func badRequest(w http.ResponseWriter, param string, err error) {
	e := apiError{Message: err.Error(), Type: "invalid_request_error"}
	if param != "" {
		e.Param = &param
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": e})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, allow), "")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
