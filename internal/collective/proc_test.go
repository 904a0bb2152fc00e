package collective

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The test binary plays a rank of a TCP group in another process when
// started with -collective.helper-rank (TestTCP_Processes).
var (
	helperRank = flag.Int("collective.helper-rank", -1, "run as this rank of a TCP group (test helper) instead of the tests")
	helperSize = flag.Int("collective.helper-size", 0, "the helper's group size")
	helperAddr = flag.String("collective.helper-addr", "", "rank 0's rendezvous address")
	helperN    = flag.Int("collective.helper-n", 0, "values per all-reduce")
	helperStay = flag.Bool("collective.helper-stall", false, "after the first all-reduce, block on stdin instead of joining the second")
)

func TestMain(m *testing.M) {
	flag.Parse()
	if *helperRank >= 0 {
		os.Exit(runHelper())
	}
	os.Exit(m.Run())
}

// procSeed seeds the inputs of the process test.
const procSeed = 42

// runHelper is one rank: connect, all-reduce its part of spread(…), print
// the result's digest, then join a second all-reduce (printing how it
// ended) or stall until killed.
func runHelper() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // never outlive a test
	defer cancel()
	c, err := Connect(ctx, Config{Rank: *helperRank, Size: *helperSize, Addr: *helperAddr, Secret: testSecret, Timeout: 20 * time.Second, OpTimeout: 20 * time.Second})
	if err != nil {
		fmt.Println("connect:", err)
		return 1
	}
	defer c.Close()
	buf := spread(*helperSize, *helperN, procSeed)[*helperRank]
	if err := c.AllReduce(ctx, buf); err != nil {
		fmt.Println("first:", err)
		return 1
	}
	fmt.Println("sum", digest(buf))
	if *helperStay {
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	fmt.Println("second:", c.AllReduce(ctx, make([]float32, *helperN)))
	return 0
}

func digest(v []float32) string {
	s := sha256.Sum256(asBytes(v))
	return hex.EncodeToString(s[:])
}

// helper is a rank in another process and the lines it prints.
type helper struct {
	cmd   *exec.Cmd
	lines chan string
}

func startHelper(t *testing.T, rank, size, n int, addr string, stall bool) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$", fmt.Sprintf("-collective.helper-rank=%d", rank), fmt.Sprintf("-collective.helper-size=%d", size),
		"-collective.helper-addr="+addr, fmt.Sprintf("-collective.helper-n=%d", n), fmt.Sprintf("-collective.helper-stall=%v", stall))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.StdinPipe(); err != nil { // held open: a stalled helper blocks on it
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return h
}

func (h *helper) line(t *testing.T, what string) string {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			t.Fatalf("%s: helper pid %d exited", what, h.cmd.Process.Pid)
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: nothing from helper pid %d after 20 s", what, h.cmd.Process.Pid)
	}
	return ""
}

// TestTCP_Processes: three ranks in three OS processes (this one is
// rank 0) all-reduce to the bits of the reference order; then rank 2 is
// killed while ranks 0 and 1 are in a second all-reduce, and both fail
// within seconds (the op timeout is 20 s) naming rank 2.
func TestTCP_Processes(t *testing.T) {
	const size, n = 3, 300_001
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h1 := startHelper(t, 1, size, n, ln.Addr().String(), false)
	h2 := startHelper(t, 2, size, n, ln.Addr().String(), true)
	ctx := context.Background()
	c, err := Connect(ctx, Config{Rank: 0, Size: size, Listener: ln, Secret: testSecret, Timeout: 20 * time.Second, OpTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	in := spread(size, n, procSeed)
	want := make([]float32, n)
	for s, r := range Partition(n, size) {
		RingSum(want, in, s, r)
	}
	buf := append([]float32(nil), in[0]...)
	if err := c.AllReduce(ctx, buf); err != nil {
		t.Fatal(err)
	}
	if i := sameBits32(buf, want); i >= 0 {
		t.Fatalf("rank 0's all-reduce differs from RingSum at %d", i)
	}
	for k, h := range []*helper{h1, h2} {
		if got := h.line(t, "first all-reduce"); got != "sum "+digest(want) {
			t.Fatalf("rank %d: %q, want the digest of the reference sum", k+1, got)
		}
	}

	errc := make(chan error, 1)
	go func() { errc <- c.AllReduce(ctx, make([]float32, n)) }()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := h2.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("rank 0: no error 10 s after rank 2 was killed")
	}
	t.Logf("rank 0, %v after the kill: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "rank 2 (") {
		t.Fatalf("rank 0: %v, want an error naming rank 2", err)
	}
	l := h1.line(t, "second all-reduce")
	t.Logf("rank 1: %s", l)
	if !strings.HasPrefix(l, "second: collective: all-reduce: rank 1") || !strings.Contains(l, "rank 2 (") {
		t.Fatalf("rank 1: %q, want an error naming rank 2", l)
	}
}
