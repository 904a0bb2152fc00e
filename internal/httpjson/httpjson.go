// Package httpjson is the client side of gorlhf's remote protocols
// (reward servers, environments): a JSON body POSTed with a timeout per
// attempt, transient failures retried with jittered exponential back-off,
// and errors that name what the server answered. DecodeOne is the
// servers' side: a request body holds one JSON value and nothing more.
package httpjson

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Config says how requests are sent and retried.
type Config struct {
	// Timeout bounds one attempt, connection to last byte.
	Timeout time.Duration
	// Attempts is the number of tries per request, the first included.
	Attempts int
	// Backoff is the wait before the first retry; it doubles on each
	// retry up to MaxBackoff, with jitter (a random 50–100 % of the
	// nominal wait) so that many clients do not retry in step.
	Backoff, MaxBackoff time.Duration
	// APIKey, when set, is sent as "Authorization: Bearer APIKey".
	APIKey string
	// MaxResponseBytes bounds the answer body.
	MaxResponseBytes int64
	// Client sends the requests; nil uses a default client. Timeouts come
	// from Timeout, not from the client.
	Client *http.Client
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("timeout %v must be positive", c.Timeout)
	case c.Attempts < 1:
		return fmt.Errorf("attempts %d must be ≥ 1", c.Attempts)
	case c.Backoff < 0 || c.MaxBackoff < c.Backoff:
		return fmt.Errorf("backoff %v, max %v: want 0 ≤ backoff ≤ max", c.Backoff, c.MaxBackoff)
	case c.MaxResponseBytes <= 0:
		return fmt.Errorf("max response bytes %d must be positive", c.MaxResponseBytes)
	}
	return nil
}

// Client posts JSON with retries. It is safe for concurrent use.
type Client struct {
	cfg Config
	hc  *http.Client
}

// New returns a client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := cfg.Client
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, hc: hc}, nil
}

// Post sends body to url until an attempt succeeds or fails for good.
// decode reads the body of a 2xx answer; its error means the answer breaks
// the protocol and is not retried. Network errors, timeouts, 5xx, 408 and
// 429 are retried (at least the server's Retry-After apart); other
// statuses are not. The error of the last attempt comes back wrapped with
// the number of attempts; a cancelled ctx returns its error at once.
func (c *Client) Post(ctx context.Context, url string, body []byte, decode func(status string, data []byte) error) error {
	var last error
	for attempt := 1; attempt <= c.cfg.Attempts; attempt++ {
		err := c.attempt(ctx, url, body, decode)
		if err == nil {
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retryable(err) || attempt == c.cfg.Attempts {
			break
		}
		if err := sleep(ctx, c.wait(attempt, err)); err != nil {
			return fmt.Errorf("%w (while waiting to retry after: %v)", err, last)
		}
	}
	return attemptsError{last, c.cfg.Attempts, retryable(last)}
}

// httpError is a non-2xx answer.
type httpError struct {
	status int
	text   string
	body   []byte
	after  time.Duration // Retry-After, 0 if none
}

func (e *httpError) Error() string {
	return fmt.Sprintf("HTTP %s: body %s", e.text, Snippet(e.body, 200))
}

// protocolError is a 2xx answer that breaks the protocol.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

// retryable reports whether another attempt may succeed.
func retryable(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.status >= 500 || he.status == http.StatusTooManyRequests || he.status == http.StatusRequestTimeout
	}
	var pe *protocolError
	return !errors.As(err, &pe)
}

// attemptsError says how many attempts were made.
type attemptsError struct {
	err      error
	attempts int
	retried  bool
}

func (e attemptsError) Error() string {
	if !e.retried {
		return e.err.Error() + " (not retried)"
	}
	return fmt.Sprintf("%v (gave up after %d attempts)", e.err, e.attempts)
}

func (e attemptsError) Unwrap() error { return e.err }

// wait is the back-off before retry number attempt (1 = the first retry):
// Backoff·2^(attempt−1), capped at MaxBackoff, times a random 0.5–1, and
// at least the server's Retry-After (also capped).
func (c *Client) wait(attempt int, err error) time.Duration {
	d := c.cfg.Backoff << min(attempt-1, 30)
	if d > c.cfg.MaxBackoff || d < 0 {
		d = c.cfg.MaxBackoff
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	var he *httpError
	if errors.As(err, &he) && he.after > d {
		d = min(he.after, c.cfg.MaxBackoff)
	}
	return d
}

// attempt makes one request and decodes the answer.
func (c *Client) attempt(ctx context.Context, url string, body []byte, decode func(string, []byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return &protocolError{err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no answer within the timeout of %v", c.cfg.Timeout)
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("HTTP %s, then no full body within the timeout of %v", resp.Status, c.cfg.Timeout)
		}
		return fmt.Errorf("HTTP %s, reading the body: %w", resp.Status, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &httpError{status: resp.StatusCode, text: resp.Status, body: data, after: retryAfter(resp.Header)}
	}
	if int64(len(data)) > c.cfg.MaxResponseBytes {
		return &protocolError{fmt.Sprintf("HTTP %s: answer larger than %d bytes", resp.Status, c.cfg.MaxResponseBytes)}
	}
	if err := decode(resp.Status, data); err != nil {
		return &protocolError{fmt.Sprintf("HTTP %s: %v", resp.Status, err)}
	}
	return nil
}

// retryAfter reads a Retry-After header given in seconds.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Snippet quotes at most n bytes of b for an error message.
func Snippet(b []byte, n int) string {
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "…"
	}
	return strconv.Quote(string(b))
}

// Transient reports whether err, as Post returns it, ended on a failure
// that another server (or a later try) may not have: no connection, a
// timeout, 5xx, 408 or 429. An answer that breaks the protocol, another
// 4xx refusal, or a cancelled context is not transient.
func Transient(err error) bool {
	var ae attemptsError
	return errors.As(err, &ae) && ae.retried
}
