package collective

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Connect joins this process to its group as cfg.Rank and returns its
// Comm once every rank has joined and the ring works (a first barrier
// ran), or an error naming what is missing when cfg.Timeout runs out.
//
// The bootstrap: rank 0 listens on cfg.Addr; every rank opens its data
// listener, dials rank 0 (retrying until rank 0 is up), proves it knows
// the run secret and reports its rank, the group size and its data
// address; rank 0 checks them (version, secret, size, rank range, no
// duplicate), and once all Size−1 ranks are in, sends each the table of
// data addresses, proving the secret in turn. Then every rank dials its
// successor (a data and a control connection, each with a handshake that
// proves the secret and names both ranks) and accepts its predecessor's.
func Connect(ctx context.Context, cfg Config) (Comm, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		closeListener(cfg)
		return nil, err
	}
	if cfg.Size == 1 {
		closeListener(cfg)
		return &solo{}, nil
	}
	if !littleEndian {
		closeListener(cfg)
		return nil, errors.New("collective: connect: big-endian machine: the TCP transport sends values as they lie in memory, little-endian")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	b := &boot{cfg: cfg}
	var tab table
	var ln net.Listener
	var err error
	if cfg.Rank == 0 {
		tab, ln, err = b.host(ctx)
	} else {
		tab, ln, err = b.join(ctx)
	}
	if err != nil {
		return nil, err
	}
	c, err := b.ring(ctx, tab, ln)
	if err != nil {
		return nil, err
	}
	if err := c.Barrier(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("collective: connect: rank %d: first barrier: %w", cfg.Rank, err)
	}
	return c, nil
}

func closeListener(cfg Config) {
	if cfg.Listener != nil {
		cfg.Listener.Close()
	}
}

// boot is one rank's bootstrap.
type boot struct{ cfg Config }

func (b *boot) errorf(format string, args ...any) error {
	return fmt.Errorf("collective: connect: rank %d: "+format, append([]any{b.cfg.Rank}, args...)...)
}

// table is what rank 0 sends every rank: the data address of each rank
// and a fresh session id that the ring handshakes name.
type table struct {
	Session string
	Addrs   []string
}

// Handshake messages (length-prefixed JSON, wire.go).
type (
	helloMsg struct { // rank 0 → a joining rank
		Proto   string
		Version int
		Nonce   string
	}
	joinMsg struct { // a joining rank → rank 0
		Proto       string
		Version     int
		Rank, Size  int
		Data, Nonce string
		Proof       string // prove(secret, "join", hello nonce, rank, size, data, nonce)
	}
	welcomeMsg struct { // rank 0 → a joined rank, once all are in
		Error   string
		Session string
		Addrs   []string
		Proof   string // prove(secret, "welcome", join nonce, session, addrs)
	}
	linkHello struct { // a rank → its successor, on each new ring connection
		Proto    string
		Version  int
		Session  string
		From, To int
		Channel  string // "data" or "ctrl"
		Nonce    string
	}
	linkReply struct {
		Error string
		Nonce string
		Proof string
	}
)

// --- rank 0 ---

// host runs rank 0's side of the rendezvous.
func (b *boot) host(ctx context.Context) (table, net.Listener, error) {
	rl := b.cfg.Listener
	if rl == nil {
		var err error
		if rl, err = net.Listen("tcp", b.cfg.Addr); err != nil {
			return table{}, nil, b.errorf("rendezvous: %w", err)
		}
	}
	defer rl.Close()
	stop := context.AfterFunc(ctx, func() { rl.Close() })
	defer stop()
	ln, err := b.listenData(hostOf(rl.Addr()))
	if err != nil {
		return table{}, nil, err
	}
	h := &hall{b: b, joined: map[int]*guest{}, open: map[net.Conn]bool{}, full: make(chan struct{})}
	go h.accept(ctx, rl)
	select {
	case <-h.full:
	case <-ctx.Done():
	}
	tab, err := h.welcome(ctx, reportAddr(ln.Addr()))
	if err != nil {
		ln.Close()
		return table{}, nil, err
	}
	return tab, ln, nil
}

// hall is where rank 0 admits the other ranks.
type hall struct {
	b        *boot
	mu       sync.Mutex // guards the rest
	joined   map[int]*guest
	open     map[net.Conn]bool // connections being admitted or waiting for the table
	refusals []string
	full     chan struct{} // closed when Size−1 ranks have joined
	over     bool
}

// guest is a joined rank waiting for the table.
type guest struct {
	conn  net.Conn
	data  string // its data address
	nonce string
}

func (h *hall) accept(ctx context.Context, rl net.Listener) {
	for {
		conn, err := rl.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.over {
			h.mu.Unlock()
			conn.Close()
			return
		}
		h.open[conn] = true
		h.mu.Unlock()
		go h.admit(ctx, conn)
	}
}

// admit runs the handshake with one joining rank.
func (h *hall) admit(ctx context.Context, conn net.Conn) {
	cfg := h.b.cfg
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	n0 := nonce()
	var j joinMsg
	err := writeMsg(conn, helloMsg{Proto: protocolName, Version: protocolVersion, Nonce: n0})
	if err == nil {
		err = readMsg(conn, &j)
	}
	if err != nil {
		h.refuse(conn, fmt.Sprintf("handshake: %v", err), false)
		return
	}
	reason := ""
	switch {
	case j.Proto != protocolName:
		reason = fmt.Sprintf("not a %s peer (protocol %q)", protocolName, j.Proto)
	case j.Version != protocolVersion:
		reason = fmt.Sprintf("protocol version %d, rank 0 speaks %d", j.Version, protocolVersion)
	case !proven(j.Proof, cfg.Secret, "join", n0, j.Rank, j.Size, j.Data, j.Nonce):
		reason = "wrong secret"
	case j.Size != cfg.Size:
		reason = fmt.Sprintf("wrong size: rank %d says the group has %d ranks, rank 0 has %d", j.Rank, j.Size, cfg.Size)
	case j.Rank < 1 || j.Rank >= cfg.Size:
		reason = fmt.Sprintf("rank %d out of range [1, %d)", j.Rank, cfg.Size)
	}
	if reason != "" {
		h.refuse(conn, reason, true)
		return
	}
	data, err := fixHost(j.Data, conn.RemoteAddr())
	if err != nil {
		h.refuse(conn, fmt.Sprintf("rank %d: bad data address: %v", j.Rank, err), true)
		return
	}
	h.mu.Lock()
	g, dup := h.joined[j.Rank]
	if !dup && !h.over {
		h.joined[j.Rank] = &guest{conn: conn, data: data, nonce: j.Nonce}
		if len(h.joined) == cfg.Size-1 {
			close(h.full)
		}
	}
	over := h.over
	h.mu.Unlock()
	if over && !dup {
		conn.Close() // too late: the table went out
	}
	if dup {
		h.refuse(conn, fmt.Sprintf("duplicate rank %d: already joined from %s", j.Rank, g.conn.RemoteAddr()), true)
	}
}

// refuse tells a joining rank why (when it got that far) and remembers
// the refusal for rank 0's own error.
func (h *hall) refuse(conn net.Conn, reason string, tell bool) {
	if tell {
		_ = writeMsg(conn, welcomeMsg{Error: "refused it: " + reason})
	}
	conn.Close()
	h.mu.Lock()
	delete(h.open, conn)
	h.refusals = append(h.refusals, fmt.Sprintf("%s: %s", conn.RemoteAddr(), reason))
	h.mu.Unlock()
}

// welcome ends the rendezvous: with every rank in, it sends each the
// table; otherwise it returns the error naming the missing ranks.
func (h *hall) welcome(ctx context.Context, self string) (table, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.over = true
	defer func() {
		for conn := range h.open {
			conn.Close()
		}
	}()
	cfg := h.b.cfg
	if len(h.joined) < cfg.Size-1 {
		var missing []int
		for r := 1; r < cfg.Size; r++ {
			if h.joined[r] == nil {
				missing = append(missing, r)
			}
		}
		msg := fmt.Sprintf("waiting for %s to join at %s: %v", rankList(missing), cfg.Addr, ctx.Err())
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg = fmt.Sprintf("timed out after %v waiting for %s to join at %s", cfg.Timeout, rankList(missing), cfg.Addr)
		}
		if len(h.refusals) > 0 {
			msg += " (refused: " + strings.Join(h.refusals, "; ") + ")"
		}
		for _, g := range h.joined { // tell the ranks that did join why no table comes
			g.conn.SetWriteDeadline(time.Now().Add(time.Second)) // past the bootstrap's own
			_ = writeMsg(g.conn, welcomeMsg{Error: "rank 0 gave up: " + msg})
		}
		return table{}, h.b.errorf("%s", msg)
	}
	tab := table{Session: nonce(), Addrs: make([]string, cfg.Size)}
	tab.Addrs[0] = self
	for r, g := range h.joined {
		tab.Addrs[r] = g.data
	}
	all := strings.Join(tab.Addrs, "\n")
	for r, g := range h.joined {
		err := writeMsg(g.conn, welcomeMsg{Session: tab.Session, Addrs: tab.Addrs, Proof: prove(cfg.Secret, "welcome", g.nonce, tab.Session, all)})
		if err != nil {
			return table{}, h.b.errorf("rank %d (%s) left before the table was sent: %w", r, g.conn.RemoteAddr(), err)
		}
	}
	return tab, nil
}

// rankList writes ranks as "rank 2" or "ranks 2..4, 7".
func rankList(ranks []int) string {
	slices.Sort(ranks)
	var parts []string
	for i := 0; i < len(ranks); {
		j := i
		for j+1 < len(ranks) && ranks[j+1] == ranks[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d..%d", ranks[i], ranks[j]))
		} else {
			parts = append(parts, strconv.Itoa(ranks[i]))
		}
		i = j + 1
	}
	if len(ranks) == 1 {
		return "rank " + parts[0]
	}
	return "ranks " + strings.Join(parts, ", ")
}

// --- ranks 1.. ---

// join runs a rank's side of the rendezvous.
func (b *boot) join(ctx context.Context) (table, net.Listener, error) {
	conn, err := b.dialHost(ctx)
	if err != nil {
		return table{}, nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	ln, err := b.listenData(conn.LocalAddr().(*net.TCPAddr).IP.String())
	if err != nil {
		return table{}, nil, err
	}
	tab, err := b.handshakeHost(ctx, conn, reportAddr(ln.Addr()))
	if err != nil {
		ln.Close()
		return table{}, nil, err
	}
	return tab, ln, nil
}

func (b *boot) handshakeHost(ctx context.Context, conn net.Conn, data string) (table, error) {
	cfg := b.cfg
	var h helloMsg
	if err := readMsg(conn, &h); err != nil {
		return table{}, b.errorf("rank 0 (%s): handshake: %w", cfg.Addr, err)
	}
	if h.Proto != protocolName || h.Version != protocolVersion {
		return table{}, b.errorf("rank 0 (%s) speaks %q version %d, this rank %q version %d", cfg.Addr, h.Proto, h.Version, protocolName, protocolVersion)
	}
	n := nonce()
	j := joinMsg{Proto: protocolName, Version: protocolVersion, Rank: cfg.Rank, Size: cfg.Size, Data: data, Nonce: n,
		Proof: prove(cfg.Secret, "join", h.Nonce, cfg.Rank, cfg.Size, data, n)}
	if err := writeMsg(conn, j); err != nil {
		return table{}, b.errorf("rank 0 (%s): handshake: %w", cfg.Addr, err)
	}
	var w welcomeMsg
	if err := readMsg(conn, &w); err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return table{}, b.errorf("no rank table from rank 0 (%s) within %v: the other ranks did not all join: %w", cfg.Addr, cfg.Timeout, err)
		}
		return table{}, b.errorf("rank 0 (%s): waiting for the rank table: %w", cfg.Addr, err)
	}
	if w.Error != "" {
		return table{}, b.errorf("rank 0 (%s): %s", cfg.Addr, w.Error)
	}
	if len(w.Addrs) != cfg.Size || !proven(w.Proof, cfg.Secret, "welcome", n, w.Session, strings.Join(w.Addrs, "\n")) {
		return table{}, b.errorf("rank 0 (%s) sent a table it cannot prove (wrong secret?)", cfg.Addr)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return table{}, b.errorf("rendezvous address %q: %w", cfg.Addr, err)
	}
	if w.Addrs[0], err = fixHost(w.Addrs[0], &net.TCPAddr{IP: net.ParseIP(host)}); err != nil {
		return table{}, b.errorf("rank 0's data address: %w", err)
	}
	return table{Session: w.Session, Addrs: w.Addrs}, nil
}

// dialHost dials rank 0, retrying (10 ms, doubling to 0.5 s) while it is
// not up yet, until the bootstrap's deadline.
func (b *boot) dialHost(ctx context.Context) (net.Conn, error) {
	wait := 10 * time.Millisecond
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", b.cfg.Addr)
		if err == nil {
			return conn, nil
		}
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, b.errorf("dialing rank 0 at %s: %w (last try: %v)", b.cfg.Addr, ctx.Err(), err)
			}
			return nil, b.errorf("rank 0 at %s did not answer within %v: %w", b.cfg.Addr, b.cfg.Timeout, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// listenData opens this rank's data listener: cfg.Listen, or port 0 on
// host.
func (b *boot) listenData(host string) (net.Listener, error) {
	addr := b.cfg.Listen
	if addr == "" {
		addr = net.JoinHostPort(host, "0")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, b.errorf("data listener: %w", err)
	}
	return ln, nil
}

// hostOf is a listener's IP, "" when it listens on every interface.
func hostOf(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok || t.IP.IsUnspecified() {
		return ""
	}
	return t.IP.String()
}

// reportAddr is the address a rank reports for its data listener: its
// host:port, or ":port" when it listens on every interface (the reader
// then puts in the host it reached that rank at).
func reportAddr(a net.Addr) string {
	t := a.(*net.TCPAddr)
	return net.JoinHostPort(hostOf(t), strconv.Itoa(t.Port))
}

// fixHost puts seen's IP into addr when addr has no host.
func fixHost(addr string, seen net.Addr) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		t, ok := seen.(*net.TCPAddr)
		if !ok || t.IP == nil {
			return "", fmt.Errorf("%q names no host", addr)
		}
		host = t.IP.String()
	}
	return net.JoinHostPort(host, port), nil
}
