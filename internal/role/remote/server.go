package remote

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorlhf/gorlhf/internal/role/remote/wire"
)

// keepAlive probes an idle connection after 5 s, then every 5 s, and
// gives up after 3 missed answers: a vanished peer (no FIN, no RST) is
// noticed within ~20 s even in the middle of a long call.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}

// Server exposes a set of roles to drivers. Calls to the actor and to the
// critic run one at a time (those roles are not safe for concurrent
// use); calls to the other roles may overlap.
type Server struct {
	cfg    ServerConfig
	log    *slog.Logger
	info   Info
	secret [sha256.Size]byte // digest of the run secret (compared in constant time)
	routes map[string]route
	ln     net.Listener
	hs     *http.Server
	// inFlight counts authenticated calls being answered; lastCall is
	// when the latest one began or ended (UnixNano). See Idle.
	inFlight atomic.Int64
	lastCall atomic.Int64
}

// NewServer checks cfg, builds the routes of the hosted roles and
// listens on cfg.Addr (only there). Call Serve to answer calls.
func NewServer(cfg ServerConfig, hosted Hosted) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	roles := hosted.Roles()
	if len(roles) == 0 {
		return nil, errors.New("remote: server hosts no role")
	}
	sch, err := schema()
	if err != nil {
		return nil, err
	}
	host := cfg.Host
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("remote: host name: %w", err)
		}
	}
	s := &Server{
		cfg: cfg, log: logger(cfg.Logger), secret: sha256.Sum256([]byte(cfg.Secret)),
		info: Info{Version: cfg.Version, ConfigDigest: cfg.ConfigDigest, Schema: sch, Roles: roles,
			Rank: cfg.Rank, Host: host, PID: os.Getpid()},
	}
	s.routes = s.buildRoutes(hosted)
	s.lastCall.Store(time.Now().UnixNano())
	lc := net.ListenConfig{KeepAliveConfig: keepAlive}
	if s.ln, err = lc.Listen(context.Background(), "tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("remote: listen: %w", err)
	}
	s.hs = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address the server listens on (with the port chosen when
// ServerConfig.Addr asked for port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Info is what Hello answers.
func (s *Server) Info() Info { return s.info }

// Idle is how long the server has gone without an authenticated call:
// zero while one is in flight, else the time since the last one ended
// (or since NewServer). A worker whose driver pings it (Conn.Ping) can
// exit when this grows past the ping period: its driver is gone.
func (s *Server) Idle() time.Duration {
	if s.inFlight.Load() > 0 {
		return 0
	}
	return time.Since(time.Unix(0, s.lastCall.Load()))
}

// Serve answers calls until Close or Shutdown; it then returns nil.
func (s *Server) Serve() error {
	if err := s.hs.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("remote: serve: %w", err)
	}
	return nil
}

// Close stops at once: the listener and every connection close, so
// calls in flight fail on the driver's side.
func (s *Server) Close() error {
	err := s.hs.Close()
	s.ln.Close() // in case Serve never ran
	return err
}

// Shutdown stops accepting calls and waits for those in flight until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	s.ln.Close()
	return err
}

// ServeHTTP answers one call: secret, handshake fields, route, then the
// role method under the caller's remaining deadline.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.authorized(r) {
		// Nothing about the worker or the call is revealed, and the
		// offered token is not logged.
		s.log.Warn("remote: refused a call without the run secret", "from", r.RemoteAddr, "path", r.URL.Path)
		s.reply(w, nil, failf(CodeUnauthenticated, "missing or wrong run secret"))
		return
	}
	s.inFlight.Add(1)
	defer func() {
		s.lastCall.Store(time.Now().UnixNano())
		s.inFlight.Add(-1)
	}()
	if err := s.checkHello(r); err != nil {
		s.log.Warn("remote: refused a driver", "from", r.RemoteAddr, "err", err)
		s.reply(w, nil, err)
		return
	}
	rt, err := s.route(r)
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	ctx, cancel := callContext(r)
	defer cancel()
	out, err := s.run(ctx, rt, r)
	if err != nil {
		s.log.Warn("remote: call failed", "role", rt.m.role, "method", rt.m.name, "code", codeOf(err), "err", err)
	} else {
		s.log.Debug("remote: call", "role", rt.m.role, "method", rt.m.name, "elapsed", time.Since(start))
	}
	s.reply(w, out, err)
}

// run reads the request and calls the role; a panicking role becomes an
// error (the worker keeps serving, the driver learns why).
func (s *Server) run(ctx context.Context, rt route, r *http.Request) (out []byte, err error) {
	body, err := readBody(r.Body, r.ContentLength, maxBytes(s.cfg.MaxMessageBytes))
	if err != nil {
		return nil, failf(CodeInvalidArgument, "read request: %v", err)
	}
	defer func() {
		if p := recover(); p != nil {
			err = failf(CodeInternal, "%s %s panicked on the worker: %v", rt.m.role, rt.m.name, p)
		}
	}()
	return rt.handle(ctx, body)
}

// authorized reports whether r carries the run secret. Both sides are
// hashed first, so the comparison takes the same time whatever the
// offered token's length and content.
func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), bearerPrefix)
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], s.secret[:]) == 1 && ok
}

// checkHello compares the driver's version, config digest and wire
// schema with the worker's, naming both on a mismatch.
func (s *Server) checkHello(r *http.Request) error {
	h := Hello{Version: r.Header.Get(headerVersion), ConfigDigest: r.Header.Get(headerDigest), Schema: r.Header.Get(headerSchema)}
	var bad []string
	if h.Version != s.info.Version {
		bad = append(bad, fmt.Sprintf("gorlhf version mismatch: driver %q, worker %q", h.Version, s.info.Version))
	}
	if h.ConfigDigest != s.info.ConfigDigest {
		bad = append(bad, fmt.Sprintf("config digest mismatch: driver %q, worker %q", h.ConfigDigest, s.info.ConfigDigest))
	}
	if h.Schema != s.info.Schema && len(bad) == 0 {
		bad = append(bad, fmt.Sprintf("wire schema mismatch: driver %q, worker %q (both report version %q: builds of different sources?)",
			h.Schema, s.info.Schema, h.Version))
	}
	if len(bad) > 0 {
		return failf(CodeFailedPrecondition, "worker %s refuses the driver: %s", s.info, strings.Join(bad, "; "))
	}
	return nil
}

// route finds the handler of r's path.
func (s *Server) route(r *http.Request) (route, error) {
	if r.Method != http.MethodPost {
		return route{}, failf(CodeInvalidArgument, "%s %s: calls are POST", r.Method, r.URL.Path)
	}
	if rt, ok := s.routes[r.URL.Path]; ok {
		return rt, nil
	}
	name, _ := strings.CutPrefix(r.URL.Path, pathPrefix)
	roleName, _, _ := strings.Cut(name, "/")
	if _, known := methods[Role(roleName)]; known {
		return route{}, failf(CodeNotFound, "worker %s does not host the %s (it hosts %s)", s.info, roleName, joinRoles(s.info.Roles))
	}
	return route{}, failf(CodeNotFound, "no method %s", r.URL.Path)
}

// deadlineGrace is added to the driver's deadline on the worker's side:
// the driver's own timer fires first (and names the call timeout in its
// error), and its hanging up cancels the call here at once; the worker's
// deadline is the backstop when the hang-up never arrives.
const deadlineGrace = time.Second

// callContext is r's context (cancelled when the driver hangs up) bounded
// by the deadline the driver sent.
func callContext(r *http.Request) (context.Context, context.CancelFunc) {
	ms, err := strconv.ParseInt(r.Header.Get(headerTimeout), 10, 64)
	if err != nil || ms <= 0 {
		return context.WithCancel(r.Context())
	}
	return context.WithTimeout(r.Context(), time.Duration(ms)*time.Millisecond+deadlineGrace)
}

// reply writes out with status 200, or err as an errorBody.
func (s *Server) reply(w http.ResponseWriter, out []byte, err error) {
	status := http.StatusOK
	if err != nil {
		code := codeOf(err)
		status = code.httpStatus()
		out, _ = wire.Marshal(errorBody{Code: code, Message: err.Error()})
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	w.Write(out) // a failed write means the driver hung up: nothing to tell
}

// readBody reads a body of at most limit bytes, in one allocation when
// its length is announced.
func readBody(r io.Reader, length, limit int64) ([]byte, error) {
	if length > limit {
		return nil, fmt.Errorf("%d bytes exceed the %d-byte limit", length, limit)
	}
	if length >= 0 {
		b := make([]byte, length)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("more than the %d-byte limit", limit)
	}
	return b, err
}
