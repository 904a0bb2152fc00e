package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// driver starts a rendezvous on a loopback port and returns its address.
func driver(t *testing.T, cfg RendezvousConfig) (*Rendezvous, string, *http.Server) {
	t.Helper()
	r, err := NewRendezvous(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { r.Close(); srv.Close() })
	return r, ln.Addr().String(), srv
}

func baseConfig(ranks ...int) RendezvousConfig {
	return RendezvousConfig{Secret: "s3cret", Version: "v1", Digest: "d1", Ranks: ranks, Heartbeat: 20 * time.Millisecond,
		Assignment: func(rank int) (json.RawMessage, error) {
			return json.RawMessage(fmt.Sprintf(`{"roles":"r%d"}`, rank)), nil
		}}
}

func member(rank int) Member {
	return Member{Rank: rank, Host: "h", Addr: "127.0.0.1:1", PID: 7, Version: "v1", Digest: "d1"}
}

func TestRendezvous_RegisterWaitAndBye(t *testing.T) {
	r, addr, _ := driver(t, baseConfig(1, 2))
	jc := JoinConfig{Driver: addr, Secret: "s3cret", Timeout: 5 * time.Second, Silence: time.Second}
	ctx := context.Background()
	for _, k := range []int{2, 1} {
		a, err := Join(ctx, jc, member(k))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"roles":"r%d"}`, k); string(a) != want {
			t.Fatalf("assignment %s, want %s", a, want)
		}
	}
	// Registered is not enough: Wait returns once every worker also holds
	// its watch stream, so that a death right after is always seen.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := r.Wait(short)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "ranks 1, 2 registered but never opened their watch stream") {
		t.Fatalf("Wait before the watches = %v", err)
	}
	done := make(chan error, 2)
	for _, k := range []int{1, 2} {
		go func() { done <- Watch(ctx, jc, k) }()
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ms, err := r.Wait(wctx)
	if err != nil || len(ms) != 2 || ms[0].Rank != 1 || ms[1].Rank != 2 {
		t.Fatalf("Wait = %v, %v", ms, err)
	}
	r.Close()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("watch after bye: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("watch did not end after Close")
		}
	}
}

func TestRendezvous_Refusals(t *testing.T) {
	_, addr, _ := driver(t, baseConfig(1))
	ctx := context.Background()
	jc := JoinConfig{Driver: addr, Secret: "s3cret", Timeout: 5 * time.Second}
	cases := []struct {
		name string
		cfg  JoinConfig
		m    Member
		want []string
	}{
		{"wrong secret", JoinConfig{Driver: addr, Secret: "nope", Timeout: 5 * time.Second}, member(1), []string{"run secret"}},
		{"version", jc, Member{Rank: 1, Host: "hostA", Version: "v2", Digest: "d1"}, []string{"gorlhf v1", "gorlhf v2", "hostA"}},
		{"digest", jc, Member{Rank: 1, Version: "v1", Digest: "d9"}, []string{"d1", "d9"}},
		{"rank", jc, Member{Rank: 5, Version: "v1", Digest: "d1"}, []string{"rank 5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := Join(ctx, c.cfg, c.m)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Error("the secret leaked into an error")
			}
			if time.Since(start) > 2*time.Second {
				t.Error("a refusal was retried")
			}
		})
	}
}

func TestJoin_RetriesUntilDriverUpThenGivesUp(t *testing.T) {
	// The driver's port drops every connection for its first 300 ms, as
	// a driver still starting would.
	r, err := NewRendezvous(baseConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &droppingListener{Listener: ln, until: time.Now().Add(300 * time.Millisecond)}
	srv := &http.Server{Handler: r.Handler()}
	go srv.Serve(fl)
	defer srv.Close()
	jc := JoinConfig{Driver: ln.Addr().String(), Secret: "s3cret", Timeout: 10 * time.Second, Backoff: 20 * time.Millisecond}
	if _, err := Join(context.Background(), jc, member(1)); err != nil {
		t.Fatalf("join after the driver came up: %v", err)
	}
	if fl.dropped.Load() == 0 {
		t.Fatal("no attempt was dropped: the retry path was not exercised")
	}

	// Nobody ever answers: a bounded wait, then an error naming the address.
	jc.Driver, jc.Timeout = "127.0.0.1:1", 400*time.Millisecond
	start := time.Now()
	_, err = Join(context.Background(), jc, member(3))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "rank 3") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

func TestRendezvous_WaitNamesMissing(t *testing.T) {
	r, addr, _ := driver(t, baseConfig(1, 2, 3))
	if _, err := Join(context.Background(), JoinConfig{Driver: addr, Secret: "s3cret"}, member(2)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := r.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "ranks 1, 3 never registered") {
		t.Fatalf("err = %v", err)
	}
}

func TestWatch_DriverGoneAndWorkerLost(t *testing.T) {
	r, addr, srv := driver(t, baseConfig(1))
	jc := JoinConfig{Driver: addr, Secret: "s3cret", Silence: 500 * time.Millisecond}
	if _, err := Join(context.Background(), jc, member(1)); err != nil {
		t.Fatal(err)
	}
	// A worker whose watch is cancelled is reported lost.
	ctx, cancel := context.WithCancel(context.Background())
	go Watch(ctx, jc, 1)
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case l := <-r.Lost():
		if l.Member.Rank != 1 || !strings.Contains(l.Error(), "rank 1") {
			t.Fatalf("lost = %v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a dropped watch was not reported")
	}
	// The driver's server dies: the worker's watch ends with ErrDriverGone.
	done := make(chan error, 1)
	go func() { done <- Watch(context.Background(), jc, 1) }()
	time.Sleep(100 * time.Millisecond)
	srv.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrDriverGone) {
			t.Fatalf("err = %v, want ErrDriverGone", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch outlived the driver")
	}
}

func TestSupervisor_ReportsKilledWorkerWithTail(t *testing.T) {
	dir := t.TempDir()
	procs := []Proc{
		{Rank: 1, Roles: "actor", Args: []string{"-c", "echo starting; echo ready $GORLHF_TEST_X; exec sleep 30"}, Env: []string{"GORLHF_TEST_X=42"}},
		{Rank: 2, Roles: "critic", Args: []string{"-c", "exec sleep 30"}},
	}
	s, err := Start(context.Background(), "/bin/sh", procs, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(time.Second)
	pid := s.PIDs()[1]
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) { // wait for its output
		if b, _ := os.ReadFile(filepath.Join(dir, "worker-1.log")); strings.Contains(string(b), "ready 42") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-s.Exited():
		msg := e.Error()
		for _, w := range []string{"rank 1", "actor", fmt.Sprint(pid), "signal: killed", "ready 42", "worker-1.log"} {
			if !strings.Contains(msg, w) {
				t.Errorf("exit report %q lacks %q", msg, w)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the killed worker was not reported")
	}
	other := s.PIDs()[2]
	s.Stop(time.Second)
	if err := syscall.Kill(other, 0); err == nil {
		t.Fatalf("worker pid %d still runs after Stop", other)
	}
	select {
	case e := <-s.Exited():
		t.Fatalf("a stopped worker was reported as a failure: %v", e)
	default:
	}
}

func TestTailBuffer_KeepsLastLines(t *testing.T) {
	tb := newTailBuffer(3)
	fmt.Fprint(tb, "a\nb\nc")
	fmt.Fprint(tb, "\nd\ne")
	got := strings.Join(tb.Lines(), "|")
	if got != "b|c|d|e" {
		t.Fatalf("lines = %q", got)
	}
}

// droppingListener closes every connection accepted before until.
type droppingListener struct {
	net.Listener
	until   time.Time
	dropped atomic.Int64
}

func (l *droppingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || time.Now().After(l.until) {
			return c, err
		}
		l.dropped.Add(1)
		c.Close()
	}
}
