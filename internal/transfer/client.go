package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// Errors a fetch can wrap (besides ErrCorrupt).
var (
	// ErrUnauthorized: the publisher refused the token (401).
	ErrUnauthorized = errors.New("unauthorized: the publisher refused the run token")
	// ErrNotPublished: nothing is published under the name yet (404).
	ErrNotPublished = errors.New("not published")
	// ErrVersion: the publisher holds another version than the one
	// wanted (409), or an older one than the receiver has loaded.
	ErrVersion = errors.New("version mismatch")
)

// Client fetches snapshots from publishers. Safe for concurrent use.
type Client struct {
	cfg  Config
	shm  bool // ask for the same-host shortcut
	host string
	hc   *http.Client
}

// NewClient returns a client. It never reads proxy settings from the
// environment: weights go straight to the publisher.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, shm: cfg.shmUsable(), host: cfg.HostID}
	if c.host == "" {
		c.host = LocalHostID()
	}
	c.hc = &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext,
		ResponseHeaderTimeout: cfg.HeaderTimeout,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   4,
		ReadBufferSize:        64 << 10,
	}}
	return c, nil
}

// CloseIdleConnections closes kept-alive connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Fetch downloads the snapshot at url into fresh tensors (sorted by name)
// after verifying its length and checksum. want is the exact version
// required, or Latest.
func (c *Client) Fetch(ctx context.Context, url string, want int64) (Weights, Meta, error) {
	var w Weights
	m, err := c.fetch(ctx, url, want, Latest, func(pl *payload) error {
		ps, err := readFresh(pl.sr)
		w = Weights{Version: pl.meta.Version, Params: ps}
		return err
	})
	return w, m, err
}

// Head returns the Meta of the snapshot at url without its bytes.
func (c *Client) Head(ctx context.Context, url string) (Meta, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodHead, url, Latest, false)
	if err != nil {
		return Meta{}, fmt.Errorf("transfer: head %s: %w", redact(url), err)
	}
	resp.Body.Close()
	m, err := metaFromHeaders(resp.Header, c.cfg.MaxBytes)
	if err != nil {
		return Meta{}, fmt.Errorf("transfer: head %s: %w", redact(url), err)
	}
	return m, nil
}

// payload is a response being read: its Meta, the verifying reader and
// the safetensors stream over it.
type payload struct {
	meta Meta
	v    *verifier
	sr   *safetensors.Reader
}

// fetch opens url, refuses a version below floor or other than want, reads
// the payload through read, and verifies length and checksum after read
// has consumed every tensor. read must not make anything visible before
// fetch returns nil.
func (c *Client) fetch(ctx context.Context, url string, want, floor int64, read func(*payload) error) (Meta, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	body, m, err := c.open(ctx, url, want, c.shm)
	if err != nil {
		return m, fmt.Errorf("transfer: fetch %s: %w", redact(url), err)
	}
	defer body.Close()
	fail := func(err error) (Meta, error) {
		return m, fmt.Errorf("transfer: fetch %s (version %d, via %s): %w", redact(url), m.Version, m.Via, err)
	}
	if m.Version < floor {
		return fail(fmt.Errorf("%w: version %d is older than the loaded version %d", ErrVersion, m.Version, floor))
	}
	if want != Latest && m.Version != want {
		return fail(fmt.Errorf("%w: version %d served, %d wanted", ErrVersion, m.Version, want))
	}
	pl, err := c.start(ctx, body, m)
	if err != nil {
		return fail(err)
	}
	if err := read(pl); err != nil {
		return fail(pl.blame(err))
	}
	if err := pl.v.finish(); err != nil {
		return fail(err)
	}
	return m, nil
}

// start wraps body in a verifier and reads the safetensors header, whose
// version must equal the one in the response headers.
func (c *Client) start(ctx context.Context, body io.Reader, m Meta) (*payload, error) {
	v, err := newVerifier(ctx, body, m.Size, m.Checksum)
	if err != nil {
		return nil, err
	}
	pl := &payload{meta: m, v: v}
	sr, version, err := openPayload(v, m.Size)
	if err != nil {
		// A header that does not parse (a flipped byte, garbage) is the
		// payload's fault, not a mismatch with the destination.
		if err = pl.blame(err); !errors.Is(err, ErrCorrupt) && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil, err
	}
	if version != m.Version {
		return nil, fmt.Errorf("%w: payload says version %d, headers %d", ErrCorrupt, version, m.Version)
	}
	pl.sr = sr
	return pl, nil
}

// blame reports a decoding error as corruption when the stream ended
// before the announced length.
func (pl *payload) blame(err error) error {
	if errors.Is(err, ErrCorrupt) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ended after %d of %d bytes: %w", ErrCorrupt, pl.v.n, pl.v.size, err)
	}
	return err
}

// open sends the request and returns the payload's body: the HTTP body, or
// the shortcut file when the publisher runs on this host. A shortcut file
// this client cannot use (replaced meanwhile, another /dev/shm, another
// folder) falls back to the stream.
func (c *Client) open(ctx context.Context, url string, want int64, shm bool) (io.ReadCloser, Meta, error) {
	resp, err := c.do(ctx, http.MethodGet, url, want, shm)
	if err != nil {
		return nil, Meta{}, err
	}
	m, err := metaFromHeaders(resp.Header, c.cfg.MaxBytes)
	if err != nil {
		resp.Body.Close()
		return nil, m, err
	}
	if m.Path == "" {
		if resp.ContentLength != m.Size {
			resp.Body.Close()
			return nil, m, fmt.Errorf("%w: Content-Length %d, %s %d", ErrCorrupt, resp.ContentLength, HeaderLength, m.Size)
		}
		m.Via = "http"
		return resp.Body, m, nil
	}
	resp.Body.Close()
	f, err := openShm(c.cfg.ShmDir, m)
	if errors.Is(err, errNoShortcut) {
		return c.open(ctx, url, want, false)
	}
	if err != nil {
		return nil, m, err
	}
	m.Via = "shm"
	return f, m, nil
}

// do sends one authenticated request and maps refusals to errors.
func (c *Client) do(ctx context.Context, method, url string, want int64, shm bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bad URL: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+string(c.cfg.Token))
	if shm {
		req.Header.Set(HeaderHost, c.host)
	}
	if want != Latest {
		req.Header.Set(HeaderWant, strconv.FormatInt(want, 10))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	msg := strings.TrimSpace(string(snippet))
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, ErrUnauthorized
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrNotPublished, msg)
	case http.StatusConflict:
		return nil, fmt.Errorf("%w: %s", ErrVersion, msg)
	}
	return nil, fmt.Errorf("publisher answered %s: %q", resp.Status, msg)
}
