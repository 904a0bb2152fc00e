package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/gorlhf/gorlhf/internal/env"
)

// runServeEnv serves a built-in environment over the remote environment
// protocol (/reset, /step, /close), so that trainers on other machines
// can play it with --agent.env remote.
func runServeEnv(ctx context.Context, args []string) error {
	fs := newFlagSet("serve env", "serve env --env NAME [--env_args k=v,...] [--addr 127.0.0.1:5100] [--api-key KEY]")
	name := fs.String("env", "", "built-in environment: "+strings.Join(env.Names(), "; "))
	envArgs := fs.String("env_args", "", `its settings, "key=value,key=value"`)
	addr := fs.String("addr", "127.0.0.1:5100", "listen address; loopback by default")
	keyFlag := fs.String("api-key", "", "require 'Authorization: Bearer KEY' (default: $"+envAPIKeyEnv+", else $"+apiKeyEnv+"; empty: no auth)")
	sc := env.DefaultServerConfig()
	fs.IntVar(&sc.MaxEpisodes, "max-episodes", sc.MaxEpisodes, "episodes held at once; more resets are answered 503 (clients retry)")
	fs.DurationVar(&sc.IdleTTL, "idle-ttl", sc.IdleTTL, "forget an episode no call has touched for this long")
	verbose := fs.Bool("verbose", false, "log every failed call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("serve env: unexpected arguments %q", fs.Args())
	case *name == "" || *name == "remote":
		fs.Usage()
		return errors.New("serve env: --env names a built-in environment (not remote)")
	}
	f, err := env.Open(*name, *envArgs)
	if err != nil {
		return fmt.Errorf("serve env: %w", err)
	}
	var keyFrom string
	sc.APIKey, keyFrom = apiKey(*keyFlag, envAPIKeyEnv)
	if *verbose {
		sc.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv, err := env.NewServer(f, sc)
	if err != nil {
		return fmt.Errorf("serve env: %w", err)
	}
	err = serveUntilDone(ctx, httpService{cmd: "serve env", addr: *addr, handler: srv, authed: sc.APIKey != "", banner: func(addr string) {
		fmt.Fprintf(os.Stderr, "serving environment %s at http://%s (POST /reset, /step, /close; %s); Ctrl-C stops\n", *name, addr, authLine(keyFrom))
	}})
	if err != nil {
		return err
	}
	st := srv.Stats()
	fmt.Fprintf(os.Stderr, "served %d episodes, %d steps (%d replayed), %d failed calls\n", st.Episodes, st.Steps, st.Replays, st.Errors)
	return nil
}
