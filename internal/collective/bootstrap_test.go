package collective

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// wantErr fails unless err's message holds every part.
func wantErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one with %q", what, parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: %v\nwant it to contain %q", what, err, p)
		}
	}
	t.Logf("%s: %v", what, err)
}

func TestConfig_Validate(t *testing.T) {
	ok := Config{Rank: 1, Size: 2, Addr: "127.0.0.1:1", Secret: "s"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Size: 1}).Validate(); err != nil {
		t.Fatalf("size 1 needs nothing else: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Size = 0 }, "size 0"},
		{func(c *Config) { c.Rank = 2 }, "rank 2 out of range [0, 2)"},
		{func(c *Config) { c.Rank = -1 }, "rank -1 out of range"},
		{func(c *Config) { c.Addr = "" }, "rank 1: no rendezvous address"},
		{func(c *Config) { c.Secret = "" }, "empty run secret"},
		{func(c *Config) { c.Listener = ln }, "only rank 0 listens"},
		{func(c *Config) { c.OpTimeout = -time.Second }, "negative timeout"},
		{func(c *Config) { c.ChunkBytes = 100 }, "chunk of 100 bytes"},
	} {
		cfg := ok
		c.mod(&cfg)
		wantErr(t, c.want, cfg.Validate(), c.want)
		if _, err := Connect(context.Background(), cfg); err == nil {
			t.Fatalf("Connect accepted %+v", cfg)
		}
	}
	rank0 := Config{Rank: 0, Size: 2, Listener: ln, Secret: "s"}
	if err := rank0.Validate(); err != nil {
		t.Fatalf("rank 0 with a listener needs no address: %v", err)
	}
}

// TestConnect_WrongSecret: rank 0 refuses a rank with another secret and
// says so to it; it then times out naming the rank it still lacks and
// the refusal; the rank that did join is told no table came.
func TestConnect_WrongSecret(t *testing.T) {
	t.Parallel() // each waits out a bootstrap timeout
	_, errs := connectAll(t, 3, func(r int, c *Config) {
		c.Timeout = time.Second
		if r > 0 {
			c.Timeout = 2 * time.Second // to hear rank 0 give up
		}
		if r == 2 {
			c.Secret = "guessed"
		}
	})
	wantErr(t, "rank 2", errs[2], "rank 2", "refused it: wrong secret")
	wantErr(t, "rank 0", errs[0], "rank 0", "waiting for rank 2 to join", "wrong secret")
	wantErr(t, "rank 1", errs[1], "rank 1: rank 0 (", "gave up: timed out after 1s waiting for rank 2")
}

func TestConnect_WrongSize(t *testing.T) {
	t.Parallel() // each waits out a bootstrap timeout
	_, errs := connectAll(t, 2, func(r int, c *Config) {
		c.Timeout = time.Second
		if r == 1 {
			c.Size = 3
		}
	})
	wantErr(t, "rank 1", errs[1], "wrong size: rank 1 says the group has 3 ranks, rank 0 has 2")
	wantErr(t, "rank 0", errs[0], "waiting for rank 1 to join", "wrong size")
}

func TestConnect_DuplicateRank(t *testing.T) {
	t.Parallel() // each waits out a bootstrap timeout
	_, errs := connectAll(t, 3, func(r int, c *Config) {
		c.Timeout = time.Second
		if r == 2 {
			c.Rank = 1
		}
	})
	wantErr(t, "rank 0", errs[0], "waiting for rank 2 to join", "duplicate rank 1: already joined from 127.0.0.1:")
	dup := 0
	for _, err := range errs[1:] {
		if err != nil && strings.Contains(err.Error(), "refused it: duplicate rank 1") {
			dup++
		}
	}
	if dup != 1 {
		t.Fatalf("ranks 1 and 2: %v / %v, want one refused as a duplicate", errs[1], errs[2])
	}
}

func TestConnect_Timeout(t *testing.T) {
	t.Parallel() // each waits out a bootstrap timeout
	_, errs := connectAll(t, 2, func(r int, c *Config) {
		c.Timeout = 500 * time.Millisecond
		c.Size = 5
		if r == 1 {
			c.Rank = 3
			c.Timeout = time.Second
		}
	})
	wantErr(t, "rank 0", errs[0], "rank 0: timed out after 500ms waiting for ranks 1..2, 4 to join at 127.0.0.1:")
	wantErr(t, "rank 3", errs[1], "rank 3: rank 0 (", "waiting for ranks 1..2, 4")
}

// TestConnect_RankZeroLate: ranks retry until rank 0 listens.
func TestConnect_RankZeroLate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // rank 0 will listen on it itself, later
	comms := make([]Comm, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Go(func() {
			if r == 0 {
				time.Sleep(300 * time.Millisecond)
			}
			comms[r], errs[r] = Connect(context.Background(), Config{Rank: r, Size: 3, Addr: addr, Secret: testSecret, Timeout: 10 * time.Second})
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		defer comms[r].Close()
	}
	onRanks(t, comms, func(c Comm) error { return c.Barrier(context.Background()) })

	start := time.Now()
	_, err = Connect(context.Background(), Config{Rank: 1, Size: 2, Addr: addr, Secret: testSecret, Timeout: 300 * time.Millisecond})
	// The last dial's error is "connection refused", or its own timeout
	// when the bootstrap's 300 ms ran out during it (a loaded machine).
	wantErr(t, "no rank 0", err, "rank 1: rank 0 at "+addr+" did not answer within 300ms", "dial tcp "+addr)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

// TestLink_WrongSecret: a ring connection from a process that does not
// know the secret is refused, and a dialer does not trust an acceptor
// that does not know it either.
func TestLink_WrongSecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []struct{ dialer, acceptor string }{{"guessed", testSecret}, {testSecret, "guessed"}} {
		d := &boot{cfg: Config{Rank: 0, Size: 2, Secret: c.dialer}}
		a := &boot{cfg: Config{Rank: 1, Size: 2, Secret: c.acceptor}}
		x, y := net.Pipe()
		var aerr error
		var wg sync.WaitGroup
		wg.Go(func() {
			_, aerr = a.acceptorHandshake(ctx, y, "session", 0)
			y.Close()
		})
		derr := d.dialerHandshake(ctx, x, "session", 1, "data")
		x.Close()
		wg.Wait()
		if derr == nil || aerr == nil {
			t.Fatalf("dialer secret %q, acceptor %q: dialer %v, acceptor %v", c.dialer, c.acceptor, derr, aerr)
		}
		t.Logf("dialer: %v; acceptor: %v", derr, aerr)
	}
	// The right secret but the wrong session or rank is refused too.
	d := &boot{cfg: Config{Rank: 2, Size: 3, Secret: testSecret}}
	a := &boot{cfg: Config{Rank: 1, Size: 3, Secret: testSecret}}
	x, y := net.Pipe()
	var aerr error
	var wg sync.WaitGroup
	wg.Go(func() { _, aerr = a.acceptorHandshake(ctx, y, "session", 0); y.Close() })
	derr := d.dialerHandshake(ctx, x, "session", 1, "data")
	wg.Wait()
	wantErr(t, "wrong predecessor", derr, "refused: rank 2 dialed rank 1; rank 1 expects its predecessor, rank 0")
	if aerr == nil {
		t.Fatal("acceptor took the wrong predecessor")
	}
}

func TestRankList(t *testing.T) {
	for _, c := range []struct {
		in   []int
		want string
	}{{[]int{2}, "rank 2"}, {[]int{3, 2}, "ranks 2..3"}, {[]int{1, 2, 4, 6, 7, 8}, "ranks 1..2, 4, 6..8"}} {
		if got := rankList(c.in); got != c.want {
			t.Fatalf("rankList(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestAddresses: a rank listening on every interface reports ":port",
// and the reader fills in the host it reached that rank at.
func TestAddresses(t *testing.T) {
	seen := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 999}
	for in, want := range map[string]string{":123": "10.1.2.3:123", "0.0.0.0:5": "10.1.2.3:5", "[::]:6": "10.1.2.3:6", "127.0.0.1:7": "127.0.0.1:7", "[fe80::1]:8": "[fe80::1]:8"} {
		if got, err := fixHost(in, seen); err != nil || got != want {
			t.Fatalf("fixHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := fixHost("nonsense", seen); err == nil {
		t.Fatal("fixHost accepted an address without a port")
	}
	if got := reportAddr(&net.TCPAddr{IP: net.IPv4zero, Port: 42}); got != ":42" {
		t.Fatalf("reportAddr(0.0.0.0:42) = %q", got)
	}
	if got := reportAddr(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 42}); got != "127.0.0.1:42" {
		t.Fatalf("reportAddr(127.0.0.1:42) = %q", got)
	}
}
