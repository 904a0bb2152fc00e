package collective

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// The ring links: each rank dials its successor twice (channel "data",
// then "ctrl") and accepts its predecessor's two on its data listener.
// Each connection opens with a handshake in which both ends prove the
// run secret over both ends' nonces, the session of this bootstrap, the
// two ranks and the channel; anything else that connects is refused.

var channels = []string{"data", "ctrl"}

// ring connects this rank to its neighbours and returns its Comm.
func (b *boot) ring(ctx context.Context, tab table, ln net.Listener) (*tcpComm, error) {
	defer ln.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	r, size := b.cfg.Rank, b.cfg.Size
	next := &link{rank: mod(r+1, size), addr: tab.Addrs[mod(r+1, size)]}
	prev := &link{rank: mod(r-1, size), addr: tab.Addrs[mod(r-1, size)]}
	var wg sync.WaitGroup
	var dialErr, acceptErr error
	wg.Go(func() {
		if dialErr = b.dialLinks(ctx, tab.Session, next); dialErr != nil {
			cancel()
		}
	})
	wg.Go(func() {
		if acceptErr = b.acceptLinks(ctx, tab.Session, ln, prev); acceptErr != nil {
			cancel()
		}
	})
	wg.Wait()
	if err := errors.Join(dialErr, acceptErr); err != nil {
		for _, c := range []net.Conn{next.data, next.ctrl, prev.data, prev.ctrl} {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	return newTCPComm(b.cfg, next, prev), nil
}

// dialLinks opens the data and control connections to the successor.
func (b *boot) dialLinks(ctx context.Context, session string, l *link) error {
	for _, ch := range channels {
		conn, err := b.dialLink(ctx, session, l, ch)
		if err != nil {
			return b.errorf("%s link → rank %d (%s): %w", ch, l.rank, l.addr, err)
		}
		if ch == "data" {
			l.data = conn
		} else {
			l.ctrl = conn
		}
	}
	return nil
}

func (b *boot) dialLink(ctx context.Context, session string, l *link, ch string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, err
	}
	if err := b.dialerHandshake(ctx, conn, session, l.rank, ch); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func (b *boot) dialerHandshake(ctx context.Context, conn net.Conn, session string, to int, ch string) error {
	deadline(ctx, conn)
	secret, from := b.cfg.Secret, b.cfg.Rank
	nd := nonce()
	if err := writeMsg(conn, linkHello{Proto: protocolName, Version: protocolVersion, Session: session, From: from, To: to, Channel: ch, Nonce: nd}); err != nil {
		return err
	}
	var rep linkReply
	if err := readMsg(conn, &rep); err != nil {
		return err
	}
	if rep.Error != "" {
		return fmt.Errorf("refused: %s", rep.Error)
	}
	if !proven(rep.Proof, secret, "link-acceptor", session, from, to, ch, nd, rep.Nonce) {
		_ = writeMsg(conn, linkReply{Error: "wrong secret: your proof does not verify"})
		return errors.New("wrong secret: the peer's proof does not verify")
	}
	if err := writeMsg(conn, linkReply{Proof: prove(secret, "link-dialer", session, from, to, ch, nd, rep.Nonce)}); err != nil {
		return err
	}
	if err := readMsg(conn, &rep); err != nil {
		return err
	}
	if rep.Error != "" {
		return fmt.Errorf("refused: %s", rep.Error)
	}
	return conn.SetDeadline(time.Time{})
}

// accepted is one connection's handshake outcome.
type accepted struct {
	conn net.Conn
	ch   string
	err  error
}

// acceptLinks takes the predecessor's data and control connections,
// refusing any other.
func (b *boot) acceptLinks(ctx context.Context, session string, ln net.Listener, l *link) error {
	results := make(chan accepted)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				ch, err := b.acceptorHandshake(ctx, conn, session, l.rank)
				select {
				case results <- accepted{conn, ch, err}:
				case <-done:
					conn.Close()
				}
			}()
		}
	}()
	var refusals []string
	for l.data == nil || l.ctrl == nil {
		select {
		case a := <-results:
			switch {
			case a.err != nil:
				refusals = append(refusals, fmt.Sprintf("%s: %v", a.conn.RemoteAddr(), a.err))
				a.conn.Close()
			case a.ch == "data" && l.data == nil:
				l.data = a.conn
			case a.ch == "ctrl" && l.ctrl == nil:
				l.ctrl = a.conn
			default:
				refusals = append(refusals, fmt.Sprintf("%s: a second %s connection", a.conn.RemoteAddr(), a.ch))
				a.conn.Close()
			}
		case <-ctx.Done():
			msg := fmt.Sprintf("waiting for rank %d (%s) to connect: %v", l.rank, l.addr, context.Cause(ctx))
			if len(refusals) > 0 {
				msg += " (refused: " + strings.Join(refusals, "; ") + ")"
			}
			return b.errorf("%s", msg)
		}
	}
	return nil
}

// acceptorHandshake checks one incoming ring connection: it must come
// from rank from of this session and prove the secret. It returns the
// channel.
func (b *boot) acceptorHandshake(ctx context.Context, conn net.Conn, session string, from int) (string, error) {
	deadline(ctx, conn)
	secret, to := b.cfg.Secret, b.cfg.Rank
	var hi linkHello
	if err := readMsg(conn, &hi); err != nil {
		return "", err
	}
	reason := ""
	switch {
	case hi.Proto != protocolName || hi.Version != protocolVersion:
		reason = fmt.Sprintf("speaks %q version %d, this rank %q version %d", hi.Proto, hi.Version, protocolName, protocolVersion)
	case hi.Session != session:
		reason = "from another bootstrap (session differs)"
	case hi.From != from || hi.To != to:
		reason = fmt.Sprintf("rank %d dialed rank %d; rank %d expects its predecessor, rank %d", hi.From, hi.To, to, from)
	case hi.Channel != "data" && hi.Channel != "ctrl":
		reason = fmt.Sprintf("unknown channel %q", hi.Channel)
	}
	if reason != "" {
		_ = writeMsg(conn, linkReply{Error: reason})
		return "", errors.New(reason)
	}
	na := nonce()
	if err := writeMsg(conn, linkReply{Nonce: na, Proof: prove(secret, "link-acceptor", session, from, to, hi.Channel, hi.Nonce, na)}); err != nil {
		return "", err
	}
	var p linkReply
	if err := readMsg(conn, &p); err != nil {
		return "", err
	}
	if p.Error != "" {
		return "", fmt.Errorf("refused by rank %d: %s", from, p.Error)
	}
	if !proven(p.Proof, secret, "link-dialer", session, from, to, hi.Channel, hi.Nonce, na) {
		_ = writeMsg(conn, linkReply{Error: "wrong secret: your proof does not verify"})
		return "", errors.New("wrong secret: the peer's proof does not verify")
	}
	if err := writeMsg(conn, linkReply{}); err != nil {
		return "", err
	}
	return hi.Channel, conn.SetDeadline(time.Time{})
}

// deadline bounds a handshake by the bootstrap's deadline.
func deadline(ctx context.Context, conn net.Conn) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
}
