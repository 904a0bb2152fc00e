package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/serve"
)

// runServe serves the model over an OpenAI-compatible HTTP API until ctx
// ends (Ctrl-C, SIGTERM), then shuts down gracefully (serveUntilDone).
func runServe(ctx context.Context, args []string) error {
	fs := newFlagSet("serve", "serve [--model M] [--addr 127.0.0.1:8000] [--api-key KEY] [--served-model-name NAME]")
	var ef engineFlags
	ef.register(fs)
	var rf rolloutFlags
	rf.register(fs)
	addr := fs.String("addr", "127.0.0.1:8000", "listen address (loopback by default; use 0.0.0.0:PORT to expose it, with --api-key)")
	keyFlag := fs.String("api-key", "", "require \"Authorization: Bearer KEY\" on /v1/ routes (default: $"+apiKeyEnv+"; empty: no auth)")
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
	key, keyFrom := apiKey(*keyFlag, "")
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	modelName := cmp.Or(*name, rm.Name)
	_, tmplErr := rm.NeedTemplate()
	srv, eng, err := rm.server(rf.engine, serve.Options{ModelName: modelName, APIKey: key, ChatMaxTokens: *chatMax,
		MaxTokensLimit: *maxTokens, Logger: logger, TemplateError: tmplErr})
	if err != nil {
		return err
	}
	defer eng.Close()
	chat := "chat template loaded"
	switch {
	case tmplErr != nil && errors.Is(tmplErr, chattmpl.ErrNoTemplate):
		chat = "no chat template: /v1/chat/completions answers 400"
	case tmplErr != nil:
		chat = "the chat template does not load: /v1/chat/completions answers 500"
		logger.Warn("serve: the model's chat template does not load", "err", tmplErr)
	}
	return serveUntilDone(ctx, httpService{cmd: "serve", addr: *addr, handler: srv.Handler(), authed: key != "",
		onShutdown: srv.Drain, banner: func(addr string) {
			logger.Info("serving", "summary", rm.Summary, "model", modelName, "url", "http://"+addr+"/v1",
				"auth", authLine(keyFrom), "chat", chat, "kv_blocks", eng.Stats().KVBlocks,
				"prefix_caching", eng.Config().PrefixCaching, "context", eng.MaxPositions(), "max_tokens_limit", *maxTokens)
		}})
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
