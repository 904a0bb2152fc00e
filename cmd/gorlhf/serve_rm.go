package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/rmodel"
)

// runServeRM serves a reward model over HTTP with OpenRLHF's remote reward
// protocol (POST /get_reward {"query": [...]} → {"rewards": [...]}), so
// that gorlhf (--reward.remote_url) or OpenRLHF trainers on other machines
// can score rollouts with it.
func runServeRM(ctx context.Context, args []string) error {
	fs := newFlagSet("serve rm", "serve rm --model RM [--addr 127.0.0.1:5000] [--api-key KEY] [--batch-size N] [--max-len N]")
	ref := fs.String("model", "", "reward model: a *ForSequenceClassification folder (e.g. from gorlhf train rm) or a Hub id in the local HF cache (required)")
	addr := fs.String("addr", "127.0.0.1:5000", "listen address; loopback by default (0.0.0.0:5000 listens on every interface)")
	keyFlag := fs.String("api-key", "", "require 'Authorization: Bearer KEY' (default: $"+rmAPIKeyEnv+", else $"+apiKeyEnv+"; empty: no auth)")
	tokPath := fs.String("tokenizer", "", "tokenizer file or folder (default: the model folder's)")
	headPrefix := fs.String("value-head-prefix", "", `module name of the score head in the checkpoint ("" = score; older OpenRLHF: value_head)`)
	mc := rmodel.DefaultConfig()
	fs.IntVar(&mc.BatchSize, "batch-size", mc.BatchSize, "sequences per forward pass; also how many queries the server gathers before scoring")
	fs.IntVar(&mc.MaxLen, "max-len", mc.MaxLen, "token budget per sequence; longer ones keep their first tokens, the last becoming EOS")
	fs.BoolVar(&mc.Normalize, "normalize", false, "report (r − mean)/std with the mean and std stored in config.json (OpenRLHF --reward.normalize_enable)")
	sc := reward.DefaultServerConfig()
	fs.DurationVar(&sc.Window, "window", sc.Window, "how long to wait for more concurrent requests before scoring a batch")
	verbose := fs.Bool("verbose", false, "log every scored batch")
	var eng engineFlags
	eng.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("serve rm: unexpected arguments %q", fs.Args())
	case *ref == "":
		fs.Usage()
		return errors.New("serve rm: --model is required")
	}
	var keyFrom string
	sc.APIKey, keyFrom = apiKey(*keyFlag, rmAPIKeyEnv)
	sc.BatchSize = mc.BatchSize
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	sc.Logger = logger
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("serve rm: %w", err)
	}
	if err := eng.apply(); err != nil {
		return err
	}
	src, l, err := rmodel.Load(*ref, rmodel.LoadOptions{
		Load:      load.Options{Hub: hubOptions(), Logger: logger, HeadPrefix: *headPrefix},
		Tokenizer: *tokPath, Config: mc,
	})
	if err != nil {
		return fmt.Errorf("serve rm: %w", err)
	}
	fmt.Fprintln(os.Stderr, l.Summary)
	return serveRM(ctx, src, sc, *addr, src.MaxLen(), mc.Normalize, keyFrom)
}

// serveRM listens on addr and serves src until ctx ends, then drains
// in-flight requests (serveUntilDone). keyFrom says where sc.APIKey came
// from.
func serveRM(ctx context.Context, src reward.Source, sc reward.ServerConfig, addr string, maxLen int, normalize bool, keyFrom string) error {
	srv, err := reward.NewServer(src, sc)
	if err != nil {
		return fmt.Errorf("serve rm: %w", err)
	}
	defer srv.Close()
	err = serveUntilDone(ctx, httpService{cmd: "serve rm", addr: addr, handler: srv, authed: sc.APIKey != "", banner: func(addr string) {
		fmt.Fprintf(os.Stderr, "serving rewards at http://%s%s (batch %d, max len %d, normalize %v, %s); Ctrl-C stops\n",
			addr, sc.Path, sc.BatchSize, maxLen, normalize, authLine(keyFrom))
	}})
	if err != nil {
		return err
	}
	req, batches, samples := srv.Stats()
	fmt.Fprintf(os.Stderr, "served %d requests (%d samples) in %d batches\n", req, samples, batches)
	return nil
}
