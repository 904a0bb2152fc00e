package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/serve"
)

// runServe serves the model over an OpenAI-compatible HTTP API until ctx
// ends (Ctrl-C), then shuts down gracefully.
func runServe(ctx context.Context, args []string) error {
	fs := newFlagSet("serve", "serve [--model M] [--addr 127.0.0.1:8000] [--api-key KEY] [--served-model-name NAME]")
	var ef engineFlags
	ef.register(fs)
	var rf rolloutFlags
	rf.register(fs)
	addr := fs.String("addr", "127.0.0.1:8000", "listen address (loopback by default; use 0.0.0.0:PORT to expose it, with --api-key)")
	apiKey := fs.String("api-key", os.Getenv("GORLHF_API_KEY"), "require \"Authorization: Bearer KEY\" on /v1/ routes (default $GORLHF_API_KEY; empty: no auth)")
	name := fs.String("served-model-name", "", "model id reported by /v1/models (default: the model's folder or file name)")
	chatMax := fs.Int("chat-max-tokens", 0, "length limit of chat requests that set none (0: the engine default, 256)")
	maxTokens := fs.Int("max-tokens-limit", 4096, "most tokens a request may ask for (max_tokens, max_completion_tokens); more is a 400 (0: no cap but the model's context length, which always applies)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	switch {
	case *maxTokens < 0:
		return fmt.Errorf("serve: --max-tokens-limit must be ≥ 0, got %d", *maxTokens)
	case *maxTokens > 0 && *chatMax > *maxTokens:
		return fmt.Errorf("serve: --chat-max-tokens %d is over --max-tokens-limit %d", *chatMax, *maxTokens)
	}
	if err := rf.engine.Validate(); err != nil {
		return err
	}
	if err := ef.apply(); err != nil {
		return err
	}
	rm, err := rf.open()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	modelName := cmp.Or(*name, rm.Name)
	srv, eng, err := rm.server(rf.engine, serve.Options{ModelName: modelName, APIKey: *apiKey, ChatMaxTokens: *chatMax,
		MaxTokensLimit: *maxTokens, Logger: logger})
	if err != nil {
		return err
	}
	defer eng.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	chat := "no chat template: /v1/chat/completions answers 400"
	if rm.Template != nil {
		chat = "chat template loaded"
	}
	logger.Info("serving", "summary", rm.Summary, "model", modelName, "url", "http://"+ln.Addr().String()+"/v1",
		"auth", *apiKey != "", "chat", chat, "kv_blocks", eng.Stats().KVBlocks, "context", eng.MaxPositions(), "max_tokens_limit", *maxTokens)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	return nil
}

// server starts the engine and the OpenAI-compatible server over rm, with
// rm's stop ids, chat template and BOS rule.
func (rm *rolloutModel) server(cfg generate.Config, o serve.Options) (*serve.Server, *generate.Engine, error) {
	eng, err := rm.newEngine(cfg)
	if err != nil {
		return nil, nil, err
	}
	o.Template, o.BOS = rm.Template, int(rm.BOS())
	return serve.New(eng, rm.Tok, o), eng, nil
}
