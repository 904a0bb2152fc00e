package reward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/gorlhf/gorlhf/internal/httpjson"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// RemoteConfig configures a remote reward source.
type RemoteConfig struct {
	// URLs are the reward servers (OpenRLHF --reward.remote_url, comma
	// separated there). A batch is cut into len(URLs) contiguous shards,
	// one per server, sent concurrently.
	URLs []string
	// Config is the transport: timeout per attempt (OpenRLHF: 180 s),
	// attempts (OpenRLHF: 5), back-off, bearer token, answer size limit.
	httpjson.Config
}

// DefaultRemoteConfig has OpenRLHF's timeout and attempt count and no URL.
func DefaultRemoteConfig() RemoteConfig {
	return RemoteConfig{Config: httpjson.Config{Timeout: 180 * time.Second, Attempts: 5, Backoff: 500 * time.Millisecond,
		MaxBackoff: 10 * time.Second, MaxResponseBytes: 64 << 20}}
}

// Validate checks the configuration.
func (c RemoteConfig) Validate() error {
	if len(c.URLs) == 0 {
		return errors.New("reward: remote: no URL")
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("reward: remote: %q is not an http(s) URL", u)
		}
	}
	if err := c.Config.Validate(); err != nil {
		return fmt.Errorf("reward: remote: %w", err)
	}
	return nil
}

// Remote scores samples on reward servers speaking OpenRLHF's protocol.
// It is safe for concurrent use.
type Remote struct {
	cfg    RemoteConfig
	client *httpjson.Client
}

// NewRemote returns a remote source.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := httpjson.New(cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("reward: remote: %w", err)
	}
	return &Remote{cfg: cfg, client: c}, nil
}

// Score implements Source. Every shard must succeed: if one server fails
// after its retries, the other shards are cancelled and Score returns the
// first error and no results.
func (r *Remote) Score(ctx context.Context, samples []grade.Sample) ([]grade.Result, error) {
	if len(samples) == 0 {
		return []grade.Result{}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(r.cfg.URLs)
	per := (len(samples) + n - 1) / n
	out := make([]grade.Result, len(samples))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i, u := range r.cfg.URLs {
		lo, hi := min(i*per, len(samples)), min((i+1)*per, len(samples))
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := r.post(ctx, u, samples[lo:hi])
			if err != nil {
				once.Do(func() { first = err; cancel() })
				return
			}
			copy(out[lo:hi], rs)
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, nil
}

// post sends one shard (with the client's retries) and checks the answer.
func (r *Remote) post(ctx context.Context, u string, samples []grade.Sample) ([]grade.Result, error) {
	body, err := json.Marshal(newRequest(samples))
	if err != nil {
		return nil, fmt.Errorf("reward: remote %s: encode request: %w", u, err)
	}
	var rs []grade.Result
	err = r.client.Post(ctx, u, body, func(_ string, data []byte) error {
		var ans Response
		if err := json.Unmarshal(data, &ans); err != nil {
			return fmt.Errorf("malformed JSON (%v): body %s", err, httpjson.Snippet(data, 200))
		}
		out, err := ans.results(len(samples))
		if err != nil {
			return fmt.Errorf("%v: body %s", err, httpjson.Snippet(data, 200))
		}
		rs = out
		return nil
	})
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("reward: remote %s: %w", u, err)
	case err != nil:
		return nil, fmt.Errorf("reward: remote %s: %d queries: %w", u, len(samples), err)
	}
	return rs, nil
}
