package transfer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Publisher holds the latest snapshot of each named parameter set and
// serves it over HTTP: GET /weights/{name} (HEAD for the headers only).
// Receivers pull: one snapshot serves any number of them, each fetches when
// it is ready and verifies before it loads, and the publisher needs no
// list of its receivers. Safe for concurrent use.
type Publisher struct {
	cfg      Config
	shm      bool // snapshots are files in cfg.ShmDir
	host     string
	id       string // this publisher's part of its snapshot file names
	tokenSum [sha256.Size]byte
	mux      *http.ServeMux

	mu     sync.Mutex
	snaps  map[string]*snapshot
	closed bool
}

// publishers numbers the publishers of this process, so that two of them
// (two ranks' roles in one test process) never name a file alike.
var publishers atomic.Int64

// snapshot is one published payload: a file in ShmDir or bytes in memory.
type snapshot struct {
	meta Meta
	path string
	data []byte
}

// ErrClosed is returned by a closed Publisher.
var ErrClosed = errors.New("transfer: publisher closed")

// NewPublisher returns a publisher. With cfg.ShmDir an existing folder,
// snapshots are files there (served with sendfile, and readable in place
// by same-host clients); otherwise they are kept in memory.
func NewPublisher(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Publisher{cfg: cfg, shm: cfg.shmUsable(), host: cfg.HostID, snaps: map[string]*snapshot{},
		id: fmt.Sprintf("%d.%d", os.Getpid(), publishers.Add(1))}
	if p.host == "" {
		p.host = LocalHostID()
	}
	p.tokenSum = sha256.Sum256([]byte(cfg.Token))
	p.mux = http.NewServeMux()
	p.mux.HandleFunc("GET /weights/{name}", p.serveSnapshot)
	return p, nil
}

// Publish encodes w as the new snapshot of name. Versions of a name must
// increase; the previous snapshot is dropped (its file removed; requests
// already streaming it finish on the old bytes).
func (p *Publisher) Publish(ctx context.Context, name string, w Weights) (Meta, error) {
	fail := func(err error) (Meta, error) {
		return Meta{}, fmt.Errorf("transfer: publish %s version %d: %w", name, w.Version, err)
	}
	if err := checkName(name); err != nil {
		return fail(err)
	}
	if err := p.checkNewer(name, w.Version); err != nil {
		return fail(err)
	}
	start := time.Now()
	s, err := p.encode(ctx, name, w)
	if err != nil {
		return fail(err)
	}
	if err := p.install(name, s); err != nil {
		s.remove()
		return fail(err)
	}
	if p.cfg.Logger != nil {
		p.cfg.Logger.Debug("transfer: published", "name", name, "version", w.Version, "bytes", s.meta.Size,
			"shm", s.path != "", "elapsed", time.Since(start))
	}
	return s.meta, nil
}

// checkNewer refuses a version not above the one published.
func (p *Publisher) checkNewer(name string, version int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if old := p.snaps[name]; old != nil && version <= old.meta.Version {
		return fmt.Errorf("not newer than the published version %d", old.meta.Version)
	}
	return nil
}

// encode writes the payload (to a file in ShmDir, or to memory) and
// computes its checksum on the way.
func (p *Publisher) encode(ctx context.Context, name string, w Weights) (*snapshot, error) {
	h, err := newHash(p.cfg.Checksum)
	if err != nil {
		return nil, err
	}
	s := &snapshot{meta: Meta{Name: name, Version: w.Version}}
	fill := func(dst io.Writer) error {
		bw := bufio.NewWriterSize(io.MultiWriter(dst, h), 64<<10) // large tensors bypass it
		n, err := Encode(ctxWriter{ctx, bw}, w.Version, w.Params)
		if err != nil {
			return err
		}
		s.meta.Size = n
		return bw.Flush()
	}
	if p.shm {
		s.path, err = writeShm(p.cfg.ShmDir, shmFileName(p.id, name, w.Version), fill)
	} else {
		var b bytes.Buffer
		b.Grow(encodedSizeHint(w.Params))
		err = fill(&b)
		s.data = b.Bytes()
	}
	if err != nil {
		return nil, err
	}
	s.meta.Checksum = formatSum(p.cfg.Checksum, h.Sum(nil))
	s.meta.Path = s.path
	return s, nil
}

// install makes s the snapshot of name and removes the one it replaces.
func (p *Publisher) install(name string, s *snapshot) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	old := p.snaps[name]
	if old != nil && s.meta.Version <= old.meta.Version { // a concurrent Publish won
		return fmt.Errorf("not newer than the published version %d", old.meta.Version)
	}
	p.snaps[name] = s
	if old != nil {
		old.remove()
	}
	return nil
}

// remove deletes a snapshot's file, if it has one.
func (s *snapshot) remove() {
	if s.path != "" {
		_ = os.Remove(s.path)
	}
}

// Latest returns the Meta of name's current snapshot.
func (p *Publisher) Latest(name string) (Meta, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.snaps[name]
	if s == nil {
		return Meta{}, false
	}
	return s.meta, true
}

// Close drops every snapshot and removes their files. Requests that
// arrive later get 503.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for name, s := range p.snaps {
		if s.path != "" {
			if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		delete(p.snaps, name)
	}
	return errors.Join(errs...)
}

// ServeHTTP authenticates the request, then serves GET /weights/{name}.
func (p *Publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.authorized(r) {
		if p.cfg.Logger != nil {
			p.cfg.Logger.Warn("transfer: unauthenticated request refused", "remote", r.RemoteAddr, "path", r.URL.Path)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="gorlhf"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	p.mux.ServeHTTP(w, r)
}

// authorized compares the bearer token with the run's in constant time
// (through SHA-256, so the length does not leak either).
func (p *Publisher) authorized(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], p.tokenSum[:]) == 1
}

// serveSnapshot answers with the snapshot's headers and then its bytes,
// or only its path for a client on this host.
func (p *Publisher) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	s, f, status, msg := p.lookup(r)
	if status != http.StatusOK {
		if s != nil {
			w.Header().Set(HeaderVersion, strconv.FormatInt(s.meta.Version, 10))
		}
		http.Error(w, msg, status)
		return
	}
	if f != nil {
		defer f.Close()
	}
	s.meta.setHeaders(w.Header())
	if f != nil && p.host != "" && r.Header.Get(HeaderHost) == p.host {
		w.Header().Set(HeaderPath, s.path)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(s.meta.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	var err error
	if f != nil {
		_, err = io.Copy(w, f) // *os.File to a TCP connection: sendfile
	} else {
		_, err = w.Write(s.data)
	}
	if err != nil && p.cfg.Logger != nil {
		p.cfg.Logger.Warn("transfer: send failed", "name", s.meta.Name, "version", s.meta.Version, "remote", r.RemoteAddr, "err", err)
	}
}

// lookup finds the requested snapshot and opens its file while holding the
// lock, so a concurrent Publish cannot remove it in between.
func (p *Publisher) lookup(r *http.Request) (*snapshot, *os.File, int, string) {
	name := r.PathValue("name")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, http.StatusServiceUnavailable, "publisher closed"
	}
	s := p.snaps[name]
	if s == nil {
		return nil, nil, http.StatusNotFound, fmt.Sprintf("no snapshot %q published", name)
	}
	if want := r.Header.Get(HeaderWant); want != "" && want != strconv.FormatInt(s.meta.Version, 10) {
		return s, nil, http.StatusConflict, fmt.Sprintf("version %s wanted, %d published", want, s.meta.Version)
	}
	if s.path == "" {
		return s, nil, http.StatusOK, ""
	}
	f, err := os.Open(s.path)
	if err != nil {
		return s, nil, http.StatusInternalServerError, "snapshot file unreadable"
	}
	return s, f, http.StatusOK, ""
}

// ctxWriter stops a long encode when ctx ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// Serve runs an HTTP server for h on ln until ctx ends, then shuts it down
// (waiting up to 5 s for requests in flight). Header reads are bounded so
// a silent peer cannot hold a connection forever.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("transfer: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	if err != nil {
		return fmt.Errorf("transfer: serve %s: shutdown: %w", ln.Addr(), err)
	}
	return nil
}

// Addr returns the URL base ("http://127.0.0.1:7070") of a listener.
func Addr(ln net.Listener) string { return "http://" + ln.Addr().String() }
