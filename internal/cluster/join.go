package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// JoinConfig is the worker's side of the handshake.
type JoinConfig struct {
	// Driver is the driver's rendezvous address, host:port.
	Driver string
	// Secret is the per-run secret (from the launcher, never a flag that
	// shows in ps).
	Secret string
	// Timeout bounds the whole registration, retries included: a worker
	// that cannot reach the driver for that long gives up. Default 60 s.
	Timeout time.Duration
	// Backoff is the first wait between attempts; it doubles up to 2 s.
	Backoff time.Duration
	// Silence is how long a watch may see no heartbeat before the driver
	// counts as gone. Default 15 s.
	Silence time.Duration
}

func (c *JoinConfig) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Backoff <= 0 {
		c.Backoff = 100 * time.Millisecond
	}
	if c.Silence <= 0 {
		c.Silence = 15 * time.Second
	}
}

// Validate checks the configuration.
func (c JoinConfig) Validate() error {
	var errs []error
	if c.Driver == "" {
		errs = append(errs, errors.New("cluster: join: no driver address"))
	}
	if c.Secret == "" {
		errs = append(errs, errors.New("cluster: join: empty run secret"))
	}
	return errors.Join(errs...)
}

// oneShot sends registrations: no idle connection stays open to the
// driver (one would hold up its graceful shutdown).
var oneShot = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}

// ErrRefused wraps a registration the driver answered with a refusal
// (wrong secret, version or digest mismatch): retrying cannot help.
var ErrRefused = errors.New("refused by the driver")

// Join registers me with the driver, retrying with back-off while the
// driver is not up yet, and returns the worker's assignment.
func Join(ctx context.Context, cfg JoinConfig, me Member) (json.RawMessage, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	body, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	wait := cfg.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		a, err := registerOnce(ctx, cfg, body)
		if err == nil {
			return a, nil
		}
		if errors.Is(err, ErrRefused) {
			return nil, err
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: worker rank %d could not reach the driver at %s in %v (%d attempts): %w", me.Rank, cfg.Driver, cfg.Timeout, attempt, last)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func registerOnce(ctx context.Context, cfg JoinConfig, body []byte) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+cfg.Driver+"/v1/register", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := oneShot.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusBadRequest:
		return nil, fmt.Errorf("cluster: registration with %s: %w: %s", cfg.Driver, ErrRefused, strings.TrimSpace(string(b)))
	default:
		return nil, fmt.Errorf("cluster: registration with %s: HTTP %d: %s", cfg.Driver, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var r registration
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("cluster: registration answer from %s: %w", cfg.Driver, err)
	}
	return r.Assignment, nil
}

// ErrDriverGone is returned by Watch when the driver died or dropped the
// connection without ending the run.
var ErrDriverGone = errors.New("the driver is gone")

// Watch holds the watch stream open and returns nil when the driver ends
// the run ("bye"), or an error wrapping ErrDriverGone when the stream
// breaks or stays silent longer than cfg.Silence. A worker exits on
// either: it never outlives its driver.
func Watch(ctx context.Context, cfg JoinConfig, rank int) error {
	cfg.defaults()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/v1/watch?rank=%d", cfg.Driver, rank), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cluster: watch %s: %w: %v", cfg.Driver, ErrDriverGone, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("cluster: watch %s: HTTP %d: %s", cfg.Driver, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	timer := time.NewTimer(cfg.Silence)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("cluster: watch %s: %w: no heartbeat for %v", cfg.Driver, ErrDriverGone, cfg.Silence)
		case l, ok := <-lines:
			if !ok {
				return fmt.Errorf("cluster: watch %s: %w: connection closed", cfg.Driver, ErrDriverGone)
			}
			if l == "bye" {
				return nil
			}
			timer.Reset(cfg.Silence)
		}
	}
}
