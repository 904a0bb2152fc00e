package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The board is a few named values the workers of a run hand each other
// through the driver's rendezvous, before they register: the address a
// data-parallel group's first rank listens on for the group's collective
// bootstrap (package collective), which the group's other ranks must
// dial. A value is set once (setting it again to another value is
// refused: a stray process of another run) and read by anyone with the
// run secret.
//
//	PUT /v1/board/{key}   body: the value (≤ 4 KiB)
//	GET /v1/board/{key}   200 and the value, or 404 while it is not set

// maxBoardValue bounds one value.
const maxBoardValue = 4 << 10

func (r *Rendezvous) post(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("key")
	b, err := io.ReadAll(io.LimitReader(req.Body, maxBoardValue+1))
	if err != nil || len(b) > maxBoardValue || key == "" {
		http.Error(w, fmt.Sprintf("board: bad value for %q", key), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.board[key]; ok && old != string(b) {
		http.Error(w, fmt.Sprintf("board: %q is set already, to %q", key, old), http.StatusConflict)
		return
	}
	r.board[key] = string(b)
}

func (r *Rendezvous) read(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("key")
	r.mu.Lock()
	v, ok := r.board[key]
	r.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("board: %q is not set yet", key), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, v)
}

// Post sets key to value on the driver's board, retrying with back-off
// while the driver is not up yet (within cfg.Timeout).
func Post(ctx context.Context, cfg JoinConfig, key, value string) error {
	_, err := boardCall(ctx, cfg, http.MethodPut, key, []byte(value), "post")
	return err
}

// Lookup reads key from the driver's board, waiting (within cfg.Timeout)
// until some worker has posted it.
func Lookup(ctx context.Context, cfg JoinConfig, key string) (string, error) {
	b, err := boardCall(ctx, cfg, http.MethodGet, key, nil, "look up")
	return string(b), err
}

// boardCall repeats one board request until it succeeds, is refused, or
// cfg.Timeout runs out; a GET of a key not set yet is retried.
func boardCall(ctx context.Context, cfg JoinConfig, method, key string, body []byte, what string) ([]byte, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	wait := cfg.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		b, err := boardOnce(ctx, cfg, method, key, body)
		if err == nil || errors.Is(err, ErrRefused) {
			return b, err
		}
		// An attempt cut short by the deadline says less than the answer
		// before it (typically "not set yet"): keep that one.
		if last == nil || ctx.Err() == nil || !errors.Is(err, context.DeadlineExceeded) {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: %s %q on the driver's board at %s: gave up after %v (%d attempts): %w", what, key, cfg.Driver, cfg.Timeout, attempt, last)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// errNotSet is a board key nobody has posted yet.
var errNotSet = errors.New("not set yet")

func boardOnce(ctx context.Context, cfg JoinConfig, method, key string, body []byte) ([]byte, error) {
	u := "http://" + cfg.Driver + "/v1/board/" + url.PathEscape(key)
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Secret)
	resp, err := oneShot.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBoardValue+1))
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return b, nil
	case http.StatusNotFound:
		return nil, errNotSet
	case http.StatusUnauthorized, http.StatusConflict, http.StatusBadRequest:
		return nil, fmt.Errorf("cluster: board %q at %s: %w: %s", key, cfg.Driver, ErrRefused, strings.TrimSpace(string(b)))
	}
	return nil, fmt.Errorf("cluster: board %q at %s: HTTP %d: %s", key, cfg.Driver, resp.StatusCode, strings.TrimSpace(string(b)))
}
