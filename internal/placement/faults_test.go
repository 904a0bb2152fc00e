package placement

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/cluster"
	"github.com/gorlhf/gorlhf/internal/launch"
)

// TestStart_WorkerLost cancels one worker's Serve (its death, as the
// driver sees it: the watch stream breaks): the driver's run context is
// cancelled with a cluster.Lost naming the rank, Explain returns that
// cause for the training's own error, and Close still ends the other
// worker with nil.
func TestStart_WorkerLost(t *testing.T) {
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{})
	s, workers := startRun(t, plan)
	if s.ctx.Err() != nil {
		t.Fatalf("the run is over before it began: %v", context.Cause(s.ctx))
	}
	dead := plan.Groups[2].Ranks[0].Global // the rollout engine
	workers[dead].cancel()
	if err := workers[dead].wait(t, 15*time.Second); err != nil {
		t.Errorf("cancelled worker: Serve returned %v, want nil", err)
	}
	select {
	case <-s.ctx.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the driver's run context outlived a dead worker by 15 s")
	}
	cause := context.Cause(s.ctx)
	var lost cluster.Lost
	if !errors.As(cause, &lost) || lost.Member.Rank != dead || !strings.Contains(cause.Error(), fmt.Sprintf("worker rank %d", dead)) {
		t.Fatalf("run cancelled with %v, want cluster.Lost for rank %d", cause, dead)
	}
	broken := errors.New("remote: rollout: Generate: connection refused")
	for range 2 { // Explain can be asked again
		if got := s.placed.Explain(broken); got != cause {
			t.Fatalf("Explain: %v, want %v", got, cause)
		}
	}
	if got := s.placed.Explain(nil); got != nil {
		t.Fatalf("Explain(nil) = %v", got)
	}
	if err := s.placed.Close(); err != nil {
		t.Fatal(err)
	}
	if context.Cause(s.ctx) != cause {
		t.Fatalf("Close replaced the failure %v with %v", cause, context.Cause(s.ctx))
	}
	for rank, w := range workers {
		if rank == dead {
			continue
		}
		if err := w.wait(t, 15*time.Second); err != nil {
			t.Errorf("worker rank %d: Serve returned %v after Close, want nil", rank, err)
		}
	}
}

// TestStart_WorkerLostWhileJoining: a worker that registers and then
// dies while another has not joined yet fails Start at once with its
// cluster.Lost, not after the join timeout.
func TestStart_WorkerLostWhileJoining(t *testing.T) {
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{})
	o := driverOptions(plan)
	o.JoinTimeout = 40 * time.Second
	port, done := startDriver(t, o)
	driver := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Rank 1 registers and opens its watch stream, as Serve does; rank 2
	// never comes.
	jc := cluster.JoinConfig{Driver: driver, Secret: testSecret, Timeout: 10 * time.Second}
	me := cluster.Member{Rank: 1, Host: "testhost", Addr: "127.0.0.1:1", PID: 4242, Version: testVersion, Digest: testDigest}
	if _, err := cluster.Join(context.Background(), jc, me); err != nil {
		t.Fatal(err)
	}
	body := openWatch(t, driver, 1)
	start := time.Now()
	body.Close() // the worker dies
	s := awaitStart(t, done)
	var lost cluster.Lost
	if !errors.As(s.err, &lost) || lost.Member.Rank != 1 || lost.Member.PID != 4242 {
		t.Fatalf("Start after rank 1 died: %v, want its cluster.Lost", s.err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("Start took %v to report the dead worker", d)
	}
}

// openWatch opens rank's watch stream on the driver's rendezvous and
// returns it once the driver has answered its first line.
func openWatch(t *testing.T, driver string, rank int) io.ReadCloser {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v1/watch?rank=%d", driver, rank), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if resp.StatusCode != http.StatusOK || err != nil || line != "ok\n" {
		resp.Body.Close()
		t.Fatalf("watch: %s, first line %q, %v", resp.Status, line, err)
	}
	return resp.Body
}

// TestServe_DriverGone drops the driver's rendezvous server without its
// "bye" (the driver died): every worker's Serve returns an error wrapping
// cluster.ErrDriverGone instead of serving on.
func TestServe_DriverGone(t *testing.T) {
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{})
	s, workers := startRun(t, plan)
	s.placed.server.Close() // no graceful shutdown: the watches break
	for rank, w := range workers {
		if err := w.wait(t, 15*time.Second); !errors.Is(err, cluster.ErrDriverGone) {
			t.Errorf("worker rank %d after the driver vanished: %v, want %v", rank, err, cluster.ErrDriverGone)
		}
	}
}
