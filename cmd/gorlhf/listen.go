package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownGrace is how long a server waits for in-flight requests after
// Ctrl-C or SIGTERM before it closes their connections and exits.
const shutdownGrace = 10 * time.Second

// listen opens the listening socket; tests replace it.
var listen = net.Listen

// httpService is a server serveUntilDone runs: gorlhf serve, serve rm or
// serve env.
type httpService struct {
	cmd        string            // the command, in messages ("serve rm")
	addr       string            // listen address
	handler    http.Handler      //
	authed     bool              // a bearer key is required
	banner     func(addr string) // prints the start-up line, given the bound address
	onShutdown func()            // called when shutdown begins; nil: nothing
}

// serveUntilDone listens on s.addr, prints the banner and serves until ctx
// ends (Ctrl-C, SIGTERM). It warns when a non-loopback address is served
// without a bearer key. On shutdown it stops accepting, calls
// s.onShutdown, waits up to shutdownGrace for in-flight requests, then
// closes what is left and returns: the process always exits. A second
// signal during the wait ends the process at once.
func serveUntilDone(ctx context.Context, s httpService) error {
	ln, err := listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cmd, err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !isLoopback(host) && !s.authed {
		fmt.Fprintf(os.Stderr, "%s: warning: listening on %s without --api-key (or $%s): anyone who can reach it can use it\n",
			s.cmd, ln.Addr(), apiKeyEnv)
	}
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	if s.onShutdown != nil {
		hs.RegisterOnShutdown(s.onShutdown)
	}
	stopped := make(chan error, 1)
	go func() {
		<-ctx.Done()
		signal.Reset(os.Interrupt, syscall.SIGTERM) // a second Ctrl-C kills
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		err := hs.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintf(os.Stderr, "%s: closing requests still running after %v\n", s.cmd, shutdownGrace)
			err = hs.Close()
		}
		stopped <- err
	}()
	s.banner(ln.Addr().String())
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", s.cmd, err)
	}
	if err := <-stopped; err != nil {
		return fmt.Errorf("%s: shutdown: %w", s.cmd, err)
	}
	return nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authLine says in a start-up line whether a bearer key is required and
// where it came from (apiKey).
func authLine(keyFrom string) string {
	if keyFrom == "" {
		return "no auth"
	}
	return "bearer key from " + keyFrom + " required"
}
