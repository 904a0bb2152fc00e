package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/httpjson"
)

// The remote environment protocol lets an environment live in another
// process or language (a Python game, a sandbox that runs code, a tool
// server): gorlhf is the client (--agent.env remote), `gorlhf serve env`
// and NewServer are a server. Every call is a JSON POST:
//
//	POST {url}/reset  {"prompt": "...", "label": "..."}
//	     → {"episode_id": "e1", "observation": "..."}
//	POST {url}/step   {"episode_id": "e1", "turn": 1, "action": "..."}
//	     → {"feedback": "...", "reward": 0.5, "done": false}
//	POST {url}/close  {"episode_id": "e1"}  → {}   (the episode may be forgotten)
//
// turn counts the actions of the episode from 1. A server that gets a
// turn it has already answered answers it again, unchanged, so that a
// client may retry a step whose answer was lost; gorlhf's server does.
// Any other answer than 2xx is an error: its status and body are shown to
// the user; 5xx, 408 and 429 are retried, other statuses are not.

// ResetRequest is the body of /reset.
type ResetRequest struct {
	Prompt string `json:"prompt"`
	Label  string `json:"label"`
}

// ResetResponse is the answer to /reset.
type ResetResponse struct {
	EpisodeID   string `json:"episode_id"`
	Observation string `json:"observation"`
}

// StepRequest is the body of /step.
type StepRequest struct {
	EpisodeID string `json:"episode_id"`
	Turn      int    `json:"turn"`
	Action    string `json:"action"`
}

// StepResponse is the answer to /step.
type StepResponse struct {
	Feedback string  `json:"feedback"`
	Reward   float64 `json:"reward"`
	Done     bool    `json:"done"`
}

// CloseRequest is the body of /close.
type CloseRequest struct {
	EpisodeID string `json:"episode_id"`
}

// Closer is implemented by environments that hold resources outside the
// process; the trainer calls Close when an episode is over (done or cut
// off), and errors are only logged.
type Closer interface {
	Close(ctx context.Context) error
}

// RemoteConfig configures the client of a remote environment.
type RemoteConfig struct {
	// URL is the server's base, e.g. http://127.0.0.1:5100 (the paths
	// /reset, /step and /close are appended).
	URL string
	// HTTP is the transport: timeout per attempt, attempts, back-off,
	// bearer token.
	HTTP httpjson.Config
}

// DefaultRemoteConfig waits 60 s per attempt and tries 4 times.
func DefaultRemoteConfig() RemoteConfig {
	return RemoteConfig{HTTP: httpjson.Config{Timeout: 60 * time.Second, Attempts: 4, Backoff: 250 * time.Millisecond,
		MaxBackoff: 5 * time.Second, MaxResponseBytes: 16 << 20}}
}

// Validate checks the configuration.
func (c RemoteConfig) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("env: remote: %q is not an http(s) URL", c.URL)
	}
	if err := c.HTTP.Validate(); err != nil {
		return fmt.Errorf("env: remote: %w", err)
	}
	return nil
}

// RemoteFactory returns a factory of clients of the environment server at
// cfg.URL; they share one HTTP client.
func RemoteFactory(cfg RemoteConfig) (Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := httpjson.New(cfg.HTTP)
	if err != nil {
		return nil, fmt.Errorf("env: remote: %w", err)
	}
	base := strings.TrimSuffix(cfg.URL, "/")
	return func() Env { return &remoteEnv{client: c, base: base} }, nil
}

// remoteEnv is one episode on a remote server.
type remoteEnv struct {
	client *httpjson.Client
	base   string
	id     string
	turn   int
}

// call posts req to base+path and decodes the answer into resp.
func (r *remoteEnv) call(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("env: remote %s%s: %w", r.base, path, err)
	}
	err = r.client.Post(ctx, r.base+path, body, func(_ string, data []byte) error {
		if err := json.Unmarshal(data, resp); err != nil {
			return fmt.Errorf("malformed JSON (%v): body %s", err, httpjson.Snippet(data, 200))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("env: remote %s%s: %w", r.base, path, err)
	}
	return nil
}

// Reset implements Env.
func (r *remoteEnv) Reset(ctx context.Context, prompt, label string) (string, error) {
	var resp ResetResponse
	if err := r.call(ctx, "/reset", ResetRequest{Prompt: prompt, Label: label}, &resp); err != nil {
		return "", err
	}
	if resp.EpisodeID == "" {
		return "", fmt.Errorf("env: remote %s/reset: the answer has no episode_id", r.base)
	}
	r.id, r.turn = resp.EpisodeID, 0
	return resp.Observation, nil
}

// Step implements Env.
func (r *remoteEnv) Step(ctx context.Context, action string) (string, float64, bool, error) {
	if r.id == "" {
		return "", 0, false, errors.New("env: remote: Step before Reset")
	}
	r.turn++
	var resp StepResponse
	if err := r.call(ctx, "/step", StepRequest{EpisodeID: r.id, Turn: r.turn, Action: action}, &resp); err != nil {
		return "", 0, false, fmt.Errorf("episode %s: %w", r.id, err)
	}
	return resp.Feedback, resp.Reward, resp.Done, nil
}

// Close implements Closer.
func (r *remoteEnv) Close(ctx context.Context) error {
	if r.id == "" {
		return nil
	}
	var resp struct{}
	err := r.call(ctx, "/close", CloseRequest{EpisodeID: r.id}, &resp)
	r.id = ""
	return err
}
