package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gorlhf/gorlhf/internal/role/remote/wire"
)

// Conn is a driver's connection to one worker. It is safe for concurrent
// use; its role clients (Hosted) share it.
type Conn struct {
	cfg    Config
	log    *slog.Logger
	hc     *http.Client
	base   string // http://addr
	schema string
	info   Info
}

// Dial connects to the worker at cfg.Addr: it sends Hello until the
// worker answers (retrying with back-off for cfg.DialTimeout, since a
// worker may still be starting), checks that it hosts cfg.Roles, and
// returns the connection. A refused secret, version or digest fails at
// once.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sch, err := schema()
	if err != nil {
		return nil, err
	}
	cfg.Roles, cfg.MethodTimeouts = slices.Clone(cfg.Roles), maps.Clone(cfg.MethodTimeouts)
	c := &Conn{cfg: cfg, log: logger(cfg.Logger), hc: newHTTPClient(), base: "http://" + cfg.Addr, schema: sch}
	if c.info, err = c.hello(ctx); err != nil {
		c.Close()
		return nil, err
	}
	var missing []Role
	for _, r := range cfg.Roles {
		if !slices.Contains(c.info.Roles, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		c.Close()
		return nil, fmt.Errorf("remote: dial %s at %s: worker %s hosts %s, not %s",
			joinRoles(cfg.Roles), cfg.Addr, c.info, joinRoles(c.info.Roles), joinRoles(missing))
	}
	return c, nil
}

// newHTTPClient returns a client with its own connection pool that never
// takes a proxy from the environment and probes idle connections (see
// keepAlive). Timeouts come from each call's context.
func newHTTPClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAliveConfig: keepAlive}
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // float bits do not compress
	}}
}

// Info describes the worker, as its Hello answered.
func (c *Conn) Info() Info { return c.info }

// Addr is the worker's address.
func (c *Conn) Addr() string { return c.cfg.Addr }

// Hosted returns clients of the roles the worker hosts (the others nil);
// they implement the role interfaces over this connection.
func (c *Conn) Hosted() Hosted {
	var h Hosted
	for _, r := range c.info.Roles {
		switch r {
		case RoleActor:
			h.Actor = &actorClient{c, checkpointClient{c, RoleActor}}
		case RoleCritic:
			h.Critic = &criticClient{c, checkpointClient{c, RoleCritic}}
		case RoleReference:
			h.Reference = &referenceClient{c}
		case RoleReward:
			h.Reward = &rewardClient{c}
		case RoleRollout:
			h.Rollout = &rolloutClient{c}
		}
	}
	return h
}

// Close releases idle connections; calls in flight finish.
func (c *Conn) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// dialError is a Dial that gave up.
type dialError struct {
	roles, addr string
	attempts    int
	elapsed     time.Duration
	last        *Error
}

func (e *dialError) Error() string {
	if e.last.Code == CodeUnavailable || e.last.Code == CodeDeadlineExceeded {
		return fmt.Sprintf("remote: dial %s at %s: no answer in %v (%s): %v",
			e.roles, e.addr, e.elapsed.Round(time.Millisecond), plural(e.attempts, "attempt"), e.last.Err)
	}
	return fmt.Sprintf("remote: dial %s at %s: %v", e.roles, e.addr, e.last.Err)
}

func (e *dialError) Unwrap() error { return e.last }

// hello sends Hello until it is answered, refused, or DialTimeout passes.
func (c *Conn) hello(ctx context.Context) (Info, error) {
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	wait := c.cfg.DialBackoff
	for attempt := 1; ; attempt++ {
		info, err := call[none, Info](dctx, c, method{"", methodHello}, none{})
		if err == nil {
			return info, nil
		}
		var last *Error
		if !errors.As(err, &last) {
			return Info{}, err
		}
		if ctx.Err() != nil || !retryable(last.Code) || !sleep(dctx, wait) {
			return Info{}, &dialError{roles: joinRoles(c.cfg.Roles), addr: c.cfg.Addr, attempts: attempt,
				elapsed: time.Since(start), last: last}
		}
		c.log.Debug("remote: worker not ready", "addr", c.cfg.Addr, "attempt", attempt, "err", last.Err)
		wait = min(2*wait, c.cfg.MaxDialBackoff)
	}
}

// plural writes "1 attempt", "3 attempts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Ping sends Hello once: a cheap call that tells the worker the driver is
// alive (see Server.Idle) and the driver that the worker answers.
func (c *Conn) Ping(ctx context.Context) error {
	_, err := call[none, Info](ctx, c, method{"", methodHello}, none{})
	return err
}

// retryable says whether a failed Hello may succeed later (the worker is
// starting or restarting).
func retryable(code Code) bool { return code == CodeUnavailable || code == CodeDeadlineExceeded }

// sleep waits d, or until ctx ends (then it reports false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// call sends req to method m and decodes its result.
func call[Req, Res any](ctx context.Context, c *Conn, m method, req Req) (Res, error) {
	var res Res
	body, err := wire.Marshal(req)
	if err != nil {
		return res, c.fail(m, CodeInvalidArgument, err)
	}
	out, err := c.roundTrip(ctx, m, body)
	if err != nil {
		return res, err
	}
	if err := wire.Unmarshal(out, &res); err != nil {
		return res, c.fail(m, CodeInternal, fmt.Errorf("bad reply: %w", err))
	}
	return res, nil
}

// roundTrip POSTs one call under its timeout and returns the reply body.
func (c *Conn) roundTrip(ctx context.Context, m method, body []byte) ([]byte, error) {
	timeout := c.cfg.timeout(m.name)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, c.base+m.path(), bytes.NewReader(body))
	if err != nil {
		return nil, c.fail(m, CodeInvalidArgument, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", bearerPrefix+string(c.cfg.Secret))
	req.Header.Set(headerVersion, c.cfg.Version)
	req.Header.Set(headerDigest, c.cfg.ConfigDigest)
	req.Header.Set(headerSchema, c.schema)
	if dl, ok := cctx.Deadline(); ok {
		req.Header.Set(headerTimeout, strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1), 10))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, cctx, m, timeout, err)
	}
	defer resp.Body.Close()
	data, err := readBody(resp.Body, resp.ContentLength, maxBytes(c.cfg.MaxMessageBytes))
	if err != nil {
		return nil, c.transportError(ctx, cctx, m, timeout, fmt.Errorf("read reply: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.replyError(m, resp.StatusCode, data)
	}
	return data, nil
}

// transportError explains a call that got no (complete) reply: the
// caller gave up, the call timed out, or the connection failed.
func (c *Conn) transportError(ctx, cctx context.Context, m method, timeout time.Duration, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop "Post http://…/path": the Error names all of it
	}
	switch {
	case ctx.Err() != nil:
		code := CodeCanceled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			code = CodeDeadlineExceeded
		}
		return c.fail(m, code, ctx.Err())
	case cctx.Err() != nil:
		return c.fail(m, CodeDeadlineExceeded, fmt.Errorf("no reply within the %v call timeout: %w", timeout, context.DeadlineExceeded))
	}
	return c.fail(m, CodeUnavailable, fmt.Errorf("connection failed: %w", err))
}

// replyError rebuilds the worker's error from a non-200 reply.
func (c *Conn) replyError(m method, status int, data []byte) error {
	var b errorBody
	if err := wire.Unmarshal(data, &b); err != nil || b.Code == "" {
		// Not a gorlhf worker's answer (a proxy, another server).
		text := string(data[:min(len(data), 200)])
		return c.fail(m, codeOfStatus(status), fmt.Errorf("HTTP %d: %q", status, text))
	}
	if len(b.Message) > maxErrorLength {
		b.Message = b.Message[:maxErrorLength] + "…"
	}
	return c.fail(m, b.Code, newWorkerError(b))
}

func (c *Conn) fail(m method, code Code, err error) error {
	return &Error{Role: m.role, Method: m.name, Addr: c.cfg.Addr, Code: code, Err: err}
}
