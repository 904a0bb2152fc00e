package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/role"
)

// helperWorker makes the test binary a worker process (see
// TestServer_KilledMidCall) instead of running tests.
var helperWorker = flag.Bool("remote.helper-worker", false, "serve a blocking reward role on 127.0.0.1 (test helper)")

func TestMain(m *testing.M) {
	flag.Parse()
	if *helperWorker {
		os.Exit(runHelperWorker())
	}
	os.Exit(m.Run())
}

// blockingReward is a Reward whose Score announces itself on entered and
// then waits for its context (or release) to end: a call that is in
// flight for as long as a test needs.
type blockingReward struct {
	entered  chan struct{}
	release  chan struct{}
	returned chan error // the context error Score saw
}

func newBlockingReward() *blockingReward {
	return &blockingReward{entered: make(chan struct{}, 16), release: make(chan struct{}), returned: make(chan error, 16)}
}

func (b *blockingReward) Score(ctx context.Context, req role.ScoreRequest) (role.ScoreResult, error) {
	b.entered <- struct{}{}
	select {
	case <-ctx.Done():
		b.returned <- ctx.Err()
		return role.ScoreResult{}, ctx.Err()
	case <-b.release:
		b.returned <- nil
		return role.ScoreResult{Results: make([]grade.Result, len(req.Samples))}, nil
	case <-time.After(time.Minute): // bound: never outlive a test
		b.returned <- errors.New("blockingReward: not released")
		return role.ScoreResult{}, errors.New("blockingReward: not released")
	}
}

// wait receives from c or fails after d.
func wait[T any](t testing.TB, c <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing after %v", what, d)
		panic("unreachable")
	}
}

// startBlocking serves a blockingReward and dials it.
func startBlocking(t *testing.T, mod func(*Config)) (*blockingReward, *Server, role.Reward) {
	b := newBlockingReward()
	srv := startServer(t, serverConfig(nil, quietLogger()), Hosted{Reward: b})
	cfg := clientConfig(srv.Addr(), nil, RoleReward)
	if mod != nil {
		mod(&cfg)
	}
	return b, srv, dial(t, cfg).Hosted().Reward
}

// callAsync runs Score in the background and returns its error and how
// long it took.
type outcome struct {
	err     error
	elapsed time.Duration
}

func callAsync(ctx context.Context, r role.Reward) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		start := time.Now()
		_, err := r.Score(ctx, role.ScoreRequest{Samples: []grade.Sample{{Response: "x"}}})
		done <- outcome{err, time.Since(start)}
	}()
	return done
}

func TestCall_Timeout(t *testing.T) {
	b, srv, r := startBlocking(t, func(c *Config) { c.MethodTimeouts = map[string]time.Duration{"Score": 300 * time.Millisecond} })
	o := wait(t, callAsync(context.Background(), r), 10*time.Second, "timed-out call")
	want := fmt.Sprintf("remote: reward Score on %s: no reply within the 300ms call timeout", srv.Addr())
	if o.err == nil || !strings.HasPrefix(o.err.Error(), want) {
		t.Fatalf("error %v, want it to start with %q", o.err, want)
	}
	if !errors.Is(o.err, context.DeadlineExceeded) || CodeOf(o.err) != CodeDeadlineExceeded {
		t.Fatalf("error %v: not a deadline (code %q)", o.err, CodeOf(o.err))
	}
	if o.elapsed < 300*time.Millisecond || o.elapsed > 5*time.Second {
		t.Fatalf("timed out after %v", o.elapsed)
	}
	// The worker's side of the call ends too (the deadline travels).
	if err := wait(t, b.returned, 10*time.Second, "worker's context"); err == nil {
		t.Fatal("worker's Score finished normally")
	}
}

func TestCall_CancelPropagates(t *testing.T) {
	b, _, r := startBlocking(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := callAsync(ctx, r)
	wait(t, b.entered, 10*time.Second, "call reaching the worker")
	cancel()
	o := wait(t, done, 10*time.Second, "cancelled call")
	if !errors.Is(o.err, context.Canceled) || CodeOf(o.err) != CodeCanceled {
		t.Fatalf("error %v (code %q), want context.Canceled", o.err, CodeOf(o.err))
	}
	if err := wait(t, b.returned, 10*time.Second, "worker's context"); !errors.Is(err, context.Canceled) {
		t.Fatalf("worker's Score saw %v, want context.Canceled", err)
	}
}

func TestCall_ServerClosedMidCall(t *testing.T) {
	b, srv, r := startBlocking(t, nil)
	done := callAsync(context.Background(), r)
	wait(t, b.entered, 10*time.Second, "call reaching the worker")
	closed := time.Now()
	srv.Close()
	o := wait(t, done, 10*time.Second, "call to a closed server")
	if o.err == nil || CodeOf(o.err) != CodeUnavailable || !strings.Contains(o.err.Error(), "reward Score on "+srv.Addr()) {
		t.Fatalf("error %v (code %q)", o.err, CodeOf(o.err))
	}
	if d := time.Since(closed); d > 2*time.Second {
		t.Fatalf("the error came %v after the server closed", d)
	}
}

// TestServer_KilledMidCall kills a real worker process (this test binary
// started as one) with SIGKILL while a call waits on it.
func TestServer_KilledMidCall(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-remote.helper-worker")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	addr, ok := strings.CutPrefix(wait(t, lines, 30*time.Second, "worker address"), "listening ")
	if !ok {
		t.Fatalf("worker said %q", addr)
	}
	r := dial(t, clientConfig(addr, nil, RoleReward)).Hosted().Reward
	done := callAsync(context.Background(), r)
	if l := wait(t, lines, 10*time.Second, "call reaching the worker"); l != "scoring" {
		t.Fatalf("worker said %q", l)
	}
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	o := wait(t, done, 10*time.Second, "call to a killed worker")
	if CodeOf(o.err) != CodeUnavailable || !strings.Contains(o.err.Error(), "remote: reward Score on "+addr+": connection failed") {
		t.Fatalf("error %v (code %q)", o.err, CodeOf(o.err))
	}
	if d := time.Since(killed); d > 2*time.Second {
		t.Fatalf("the error came %v after the kill", d)
	}
}

// runHelperWorker serves a blocking reward, prints "listening ADDR" and
// "scoring" when a call arrives, and exits by itself after a minute.
func runHelperWorker() int {
	b := newBlockingReward()
	srv, err := NewServer(serverConfig(nil, quietLogger()), Hosted{Reward: b})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("listening %s\n", srv.Addr())
	go func() {
		for range b.entered {
			fmt.Println("scoring")
		}
	}()
	go func() {
		time.Sleep(time.Minute)
		srv.Close()
	}()
	if err := srv.Serve(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestDial_DeadAddressGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := clientConfig(addr, nil, RoleActor, RoleReference)
	cfg.DialTimeout = 500 * time.Millisecond
	start := time.Now()
	_, err = Dial(context.Background(), cfg)
	elapsed := time.Since(start)
	want := fmt.Sprintf("remote: dial actor, reference at %s: no answer in ", addr)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "attempts") {
		t.Fatalf("error %v, want it to start with %q", err, want)
	}
	if CodeOf(err) != CodeUnavailable {
		t.Fatalf("code %q", CodeOf(err))
	}
	if elapsed < 500*time.Millisecond || elapsed > 5*time.Second {
		t.Fatalf("gave up after %v", elapsed)
	}
}

func TestDial_WaitsForLateWorker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	started := make(chan *Server, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		cfg := serverConfig(nil, quietLogger())
		cfg.Addr = addr
		s, err := NewServer(cfg, Hosted{Reward: newBlockingReward()})
		if err != nil {
			t.Error(err)
			started <- nil
			return
		}
		started <- s
		s.Serve()
	}()
	cfg := clientConfig(addr, nil, RoleReward)
	cfg.DialTimeout = 10 * time.Second
	c, err := Dial(context.Background(), cfg)
	s := wait(t, started, 10*time.Second, "late server")
	if s != nil {
		defer s.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Info().Rank != 3 || c.Info().Host != "testhost" || c.Info().PID != os.Getpid() || fmt.Sprint(c.Info().Roles) != "[reward]" {
		t.Fatalf("info %+v", c.Info())
	}
}

func TestDial_Refused(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := startServer(t, serverConfig(nil, log), Hosted{Reward: newBlockingReward()})
	const wrong = "wrong-secret-abcdefghijklmnop"
	for _, c := range []struct {
		name string
		mod  func(*Config)
		code Code
		want []string
	}{
		{"secret", func(c *Config) { c.Secret = wrong }, CodeUnauthenticated, []string{"missing or wrong run secret"}},
		{"version", func(c *Config) { c.Version = "v9.9.9" }, CodeFailedPrecondition,
			[]string{`gorlhf version mismatch: driver "v9.9.9", worker "` + testVersion + `"`, "rank 3 on host testhost"}},
		{"digest", func(c *Config) { c.ConfigDigest = "digest-2" }, CodeFailedPrecondition,
			[]string{`config digest mismatch: driver "digest-2", worker "digest-1"`}},
		{"both", func(c *Config) { c.Version, c.ConfigDigest = "v2", "digest-2" }, CodeFailedPrecondition,
			[]string{`version mismatch: driver "v2", worker "` + testVersion + `"; config digest mismatch: driver "digest-2", worker "digest-1"`}},
		{"role", func(c *Config) { c.Roles = []Role{RoleActor, RoleReward} }, "",
			[]string{"dial actor, reward at " + srv.Addr(), "hosts reward, not actor"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := clientConfig(srv.Addr(), nil, RoleReward)
			cfg.DialTimeout = 10 * time.Second
			c.mod(&cfg)
			start := time.Now()
			_, err := Dial(context.Background(), cfg)
			if err == nil {
				t.Fatal("dial succeeded")
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("a refusal was retried (%v)", time.Since(start))
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if CodeOf(err) != c.code {
				t.Errorf("code %q, want %q", CodeOf(err), c.code)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), wrong) {
				t.Errorf("error reveals a secret: %v", err)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "refused a call without the run secret") {
		t.Errorf("no refusal logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), testSecret) || strings.Contains(logs.String(), wrong) {
		t.Errorf("the log reveals a secret:\n%s", logs.String())
	}
}

// lockedWriter serialises writes to w (the server logs from its
// goroutines).
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestServer_RawHTTP speaks to the server without the client: no
// secret, a wrong method, an unknown path, garbage in the body.
func TestServer_RawHTTP(t *testing.T) {
	srv := startServer(t, serverConfig(nil, quietLogger()), Hosted{Reward: newBlockingReward()})
	sch, _ := schema()
	post := func(method, path string, auth bool, body string) int {
		req, _ := http.NewRequest(method, "http://"+srv.Addr()+path, strings.NewReader(body))
		if auth {
			req.Header.Set("Authorization", bearerPrefix+testSecret)
			req.Header.Set(headerVersion, testVersion)
			req.Header.Set(headerDigest, testDigest)
			req.Header.Set(headerSchema, sch)
			if body == "other schema" {
				req.Header.Set(headerSchema, "0123")
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	hello := method{"", methodHello}.path()
	for _, c := range []struct {
		name         string
		method, path string
		auth         bool
		body         string
		status       int
	}{
		{"no secret", http.MethodPost, hello, false, "", http.StatusUnauthorized},
		{"no secret, unknown path", http.MethodPost, "/x", false, "", http.StatusUnauthorized},
		{"hello", http.MethodPost, hello, true, "", http.StatusOK},
		{"other schema", http.MethodPost, hello, true, "other schema", http.StatusPreconditionFailed},
		{"GET", http.MethodGet, hello, true, "", http.StatusBadRequest},
		{"unknown path", http.MethodPost, "/x", true, "", http.StatusNotFound},
		{"role not hosted", http.MethodPost, method{RoleActor, "TrainStep"}.path(), true, "", http.StatusNotFound},
		{"garbage", http.MethodPost, method{RoleReward, "Score"}.path(), true, "\xff\xff\xff", http.StatusBadRequest},
	} {
		if got := post(c.method, c.path, c.auth, c.body); got != c.status {
			t.Errorf("%s: status %d, want %d", c.name, got, c.status)
		}
	}
}

// TestCall_RoleErrorText checks that a role's error comes back with its
// text unchanged behind the remote prefix.
func TestCall_RoleErrorText(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	bad := role.ActorStep{} // no micro-batches
	_, want := p.local.Actor.TrainStep(ctx, bad)
	_, got := p.remote.Actor.TrainStep(ctx, bad)
	if want == nil || got == nil {
		t.Fatalf("errors %v, %v", want, got)
	}
	if exp := fmt.Sprintf("remote: actor TrainStep on %s: %s", p.conn.Addr(), want); got.Error() != exp {
		t.Fatalf("got %q, want %q", got, exp)
	}
	if CodeOf(got) != CodeUnknown {
		t.Fatalf("code %q", CodeOf(got))
	}
}

func TestCall_NoPlane(t *testing.T) {
	srv := startServer(t, serverConfig(nil, quietLogger()), buildRoles(t))
	h := dial(t, clientConfig(srv.Addr(), newLoopbackPlane(t), RoleActor)).Hosted()
	_, err := h.Actor.Weights(context.Background())
	if CodeOf(err) != CodeFailedPrecondition || !strings.Contains(err.Error(), "the worker has no weights plane") {
		t.Fatalf("worker without a plane: %v", err)
	}
	h = dial(t, clientConfig(srv.Addr(), nil, RoleActor)).Hosted()
	if err := h.Rollout.LoadWeights(context.Background(), role.Weights{Version: 1}); CodeOf(err) != CodeFailedPrecondition ||
		!strings.Contains(err.Error(), "the driver has no weights plane") {
		t.Fatalf("driver without a plane: %v", err)
	}
}

func TestCall_MessageTooLarge(t *testing.T) {
	cfg := serverConfig(nil, quietLogger())
	cfg.MaxMessageBytes = 1000
	srv := startServer(t, cfg, buildRoles(t))
	ref := dial(t, clientConfig(srv.Addr(), nil, RoleReference)).Hosted().Reference
	if _, err := ref.LogProbs(context.Background(), role.LogProbsRequest{Seqs: ragged(1, 4)}); err != nil {
		t.Fatalf("a small request: %v", err)
	}
	_, err := ref.LogProbs(context.Background(), role.LogProbsRequest{Seqs: ragged(1, 200)})
	if CodeOf(err) != CodeInvalidArgument || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("a large request: %v", err)
	}
}

// countingActor records how many of its calls overlap. With together
// set, a call waits (up to 5 s) until that many are in.
type countingActor struct {
	role.Actor
	together int32
	in, peak atomic.Int32
}

func (c *countingActor) LogProbs(ctx context.Context, req role.LogProbsRequest) (role.LogProbsResult, error) {
	n := c.in.Add(1)
	defer c.in.Add(-1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	for deadline := time.Now().Add(5 * time.Second); c.peak.Load() < c.together && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	return role.LogProbsResult{}, nil
}

// TestServer_ActorCallsDoNotOverlap sends concurrent calls: the actor
// (not safe for concurrent use) sees them one at a time, the reference
// (safe) at once.
func TestServer_ActorCallsDoNotOverlap(t *testing.T) {
	actor, ref := &countingActor{}, &countingActor{together: 2}
	srv := startServer(t, serverConfig(nil, quietLogger()), Hosted{Actor: actor, Reference: ref})
	h := dial(t, clientConfig(srv.Addr(), nil, RoleActor, RoleReference)).Hosted()
	var wg sync.WaitGroup
	for range 4 {
		for _, r := range []role.LogProber{h.Actor, h.Reference} {
			wg.Go(func() {
				if _, err := r.LogProbs(context.Background(), role.LogProbsRequest{}); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if actor.peak.Load() != 1 || ref.peak.Load() < 2 {
		t.Fatalf("peak concurrency: actor %d (want 1), reference %d (want ≥ 2)", actor.peak.Load(), ref.peak.Load())
	}
}

// TestServer_Idle checks the worker's view of its driver: calls and pings
// reset Idle, a call in flight holds it at zero, strangers do not count.
func TestServer_Idle(t *testing.T) {
	b := newBlockingReward()
	srv := startServer(t, serverConfig(nil, quietLogger()), Hosted{Reward: b})
	conn := dial(t, clientConfig(srv.Addr(), nil, RoleReward))
	time.Sleep(50 * time.Millisecond)
	if d := srv.Idle(); d < 50*time.Millisecond {
		t.Fatalf("idle %v after 50 ms without calls", d)
	}
	resp, err := http.Post("http://"+srv.Addr()+method{"", methodHello}.path(), contentType, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := srv.Idle(); d < 50*time.Millisecond || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a call without the secret (status %d) reset idle to %v", resp.StatusCode, d)
	}
	done := callAsync(context.Background(), conn.Hosted().Reward)
	wait(t, b.entered, 10*time.Second, "call reaching the worker")
	time.Sleep(20 * time.Millisecond)
	if d := srv.Idle(); d != 0 {
		t.Fatalf("idle %v during a call", d)
	}
	close(b.release)
	if o := wait(t, done, 10*time.Second, "released call"); o.err != nil {
		t.Fatal(o.err)
	}
	time.Sleep(50 * time.Millisecond)
	before := srv.Idle()
	if err := conn.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := srv.Idle(); before < 50*time.Millisecond || after >= before {
		t.Fatalf("idle %v before a ping, %v after", before, after)
	}
}
