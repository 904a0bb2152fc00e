package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// serveUntilDone listens on addr, calls banner with the bound address,
// and serves h until ctx ends; then it drains in-flight requests for up
// to 10 s. It warns when a non-loopback address is served without a
// bearer token (authed false). cmd names the command in messages.
func serveUntilDone(ctx context.Context, cmd, addr string, h http.Handler, authed bool, banner func(addr string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !isLoopback(host) && !authed {
		fmt.Fprintf(os.Stderr, "%s: warning: listening on %s without --api-key: anyone who can reach it can use it\n", cmd, ln.Addr())
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	stopped := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- hs.Shutdown(sctx)
	}()
	banner(ln.Addr().String())
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if err := <-stopped; err != nil {
		return fmt.Errorf("%s: shutdown: %w", cmd, err)
	}
	return nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
