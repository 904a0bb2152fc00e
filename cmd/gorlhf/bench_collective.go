package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/collective"
)

// collectiveBenchConfig is what `gorlhf bench collective` measures.
type collectiveBenchConfig struct {
	Ranks      []int   // group sizes, each a group of local processes
	Sizes      []int64 // all-reduce payloads in bytes
	Reps       int     // timed rounds (after one warm-up round)
	ChunkBytes int     // collective.Config.ChunkBytes; 0: the default
	JSON       bool
}

// collectiveBenchRow is one group size and payload: medians over rounds.
type collectiveBenchRow struct {
	Ranks     int       `json:"ranks"`
	Bytes     int64     `json:"bytes"`
	TimeS     float64   `json:"time_s"`     // the slowest rank's time, median of the rounds
	AlgBW     float64   `json:"algbw_gbps"` // bytes / time, 1e9 B/s
	BusBW     float64   `json:"busbw_gbps"` // algbw · 2(n−1)/n
	BestTimeS float64   `json:"best_time_s"`
	BestBusBW float64   `json:"best_busbw_gbps"` // of the fastest round (on a shared machine: the least disturbed)
	CopyTimeS float64   `json:"copy_time_s"`
	CopyBW    float64   `json:"copy_gbps"` // one socket, one process to another
	RoundsS   []float64 `json:"rounds_s"`
}

// runBenchCollective measures the TCP all-reduce of internal/collective
// between local processes of this binary, as NCCL-tests reports: algbw
// and busbw per payload and group size, next to a plain loopback TCP copy
// of the same bytes between two processes, in alternating rounds.
func runBenchCollective(ctx context.Context, args []string) error {
	fs := newFlagSet("bench collective", "bench collective [--ranks 2,4] [--min 1M] [--max 256M] [--factor 4] [--reps 5] [--chunk-bytes 0] [--json]")
	cfg := collectiveBenchConfig{}
	ranks := fs.String("ranks", "2,4", "comma-separated group sizes; each group is that many processes on 127.0.0.1")
	minSize := fs.String("min", "1M", "smallest payload in bytes (K, M, G: powers of 1024, as NCCL-tests' -b)")
	maxSize := fs.String("max", "256M", "largest payload in bytes (as NCCL-tests' -e)")
	factor := fs.Int("factor", 4, "payload growth from one size to the next (as NCCL-tests' -f)")
	fs.IntVar(&cfg.Reps, "reps", 5, "timed rounds; each round runs the copy and every group once, after one warm-up round")
	fs.IntVar(&cfg.ChunkBytes, "chunk-bytes", 0, "pipelining chunk of the ring in bytes (0: collective.DefaultChunkBytes)")
	fs.BoolVar(&cfg.JSON, "json", false, "print one JSON object instead of a table")
	worker := fs.Bool("worker", false, "internal: be one process of the benchmark (it starts them; the spec comes on stdin)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench collective: unexpected argument %q", fs.Arg(0))
	}
	if *worker {
		return collectiveWorker(ctx, os.Stdin, os.Stdout)
	}
	var err error
	if cfg.Ranks, err = parseInts(*ranks); err != nil {
		return fmt.Errorf("bench collective: --ranks: %w", err)
	}
	if cfg.Sizes, err = payloadSizes(*minSize, *maxSize, *factor); err != nil {
		return fmt.Errorf("bench collective: %w", err)
	}
	if cfg.Reps < 1 {
		return fmt.Errorf("bench collective: --reps must be ≥ 1, got %d", cfg.Reps)
	}
	for _, n := range cfg.Ranks {
		if n < 2 || n > 64 {
			return fmt.Errorf("bench collective: --ranks: group size %d, want 2..64", n)
		}
	}
	if err := (collective.Config{Size: 1, ChunkBytes: cfg.ChunkBytes}).Validate(); err != nil {
		return fmt.Errorf("bench collective: --chunk-bytes: %w", err)
	}
	return reportBenchCollective(ctx, cfg, os.Stdout)
}

// reportBenchCollective runs the benchmark and prints the table (or the
// JSON object) to w.
func reportBenchCollective(ctx context.Context, cfg collectiveBenchConfig, w io.Writer) error {
	rows, err := benchCollective(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench collective: %w", err)
	}
	if cfg.JSON {
		return json.NewEncoder(w).Encode(map[string]any{"op": "all-reduce", "dtype": "float32", "transport": "tcp 127.0.0.1",
			"reps": cfg.Reps, "chunk_bytes": cfg.ChunkBytes, "gomaxprocs": runtime.GOMAXPROCS(0), "cpus": runtime.NumCPU(), "results": rows})
	}
	printCollectiveRows(w, cfg, rows)
	return nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// parseBytes reads 4096, 64K, 1M or 1G (powers of 1024).
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("payload %q: want a positive byte count (K, M, G suffixes)", s)
	}
	return n * mult, nil
}

// payloadSizes is min, min·factor, … up to max, each a whole number of
// float32 values.
func payloadSizes(minS, maxS string, factor int) ([]int64, error) {
	lo, err := parseBytes(minS)
	if err != nil {
		return nil, fmt.Errorf("--min: %w", err)
	}
	hi, err := parseBytes(maxS)
	if err != nil {
		return nil, fmt.Errorf("--max: %w", err)
	}
	if factor < 2 || hi < lo || lo%4 != 0 {
		return nil, fmt.Errorf("--min %d, --max %d, --factor %d: want min ≤ max, min a multiple of 4, factor ≥ 2", lo, hi, factor)
	}
	var out []int64
	for s := lo; s <= hi; s *= int64(factor) {
		out = append(out, s)
	}
	return out, nil
}

// benchCollective starts the groups and the copy pair, runs the rounds
// and stops every process it started.
func benchCollective(ctx context.Context, cfg collectiveBenchConfig) ([]collectiveBenchRow, error) {
	exe, prefix, err := workerExe()
	if err != nil {
		return nil, err
	}
	argv := append(slices.Clone(prefix), "bench", "collective", "--worker")
	var groups []*benchGroup
	defer func() {
		for _, g := range groups {
			g.stop()
		}
	}()
	for _, n := range cfg.Ranks {
		g, err := startBenchGroup(exe, argv, n, cfg.ChunkBytes)
		if g != nil {
			groups = append(groups, g)
		}
		if err != nil {
			return nil, fmt.Errorf("%d ranks: %w", n, err)
		}
	}
	cp, err := startCopyPair(exe, argv)
	if err != nil {
		return nil, fmt.Errorf("copy pair: %w", err)
	}
	defer cp.stop()

	var rows []collectiveBenchRow
	for _, size := range cfg.Sizes {
		copies := []float64{}
		times := make([][]float64, len(groups))
		for round := range cfg.Reps + 1 { // round 0 warms up (buffers, page faults) and checks the sums
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			d, err := cp.time(size)
			if err != nil {
				return nil, fmt.Errorf("copy of %d bytes: %w", size, err)
			}
			if round > 0 {
				copies = append(copies, d)
			}
			for i, g := range groups {
				d, err := g.allReduce(size)
				if err != nil {
					return nil, fmt.Errorf("%d ranks, %d bytes: %w", g.size(), size, err)
				}
				if round > 0 {
					times[i] = append(times[i], d)
				}
			}
		}
		ct := median(copies)
		for i, g := range groups {
			t, best, n := median(times[i]), slices.Min(times[i]), float64(g.size())
			alg, bus := float64(size)/t/1e9, 2*(n-1)/n
			rows = append(rows, collectiveBenchRow{Ranks: g.size(), Bytes: size, TimeS: t, AlgBW: alg, BusBW: alg * bus,
				BestTimeS: best, BestBusBW: float64(size) / best / 1e9 * bus,
				CopyTimeS: ct, CopyBW: float64(size) / ct / 1e9, RoundsS: times[i]})
		}
	}
	return rows, nil
}

func printCollectiveRows(w io.Writer, cfg collectiveBenchConfig, rows []collectiveBenchRow) {
	chunk := cfg.ChunkBytes
	if chunk == 0 {
		chunk = collective.DefaultChunkBytes
	}
	fmt.Fprintf(w, "all-reduce (float32 sum) over TCP on 127.0.0.1, one process per rank, ring with %d KiB chunks;\n", chunk>>10)
	fmt.Fprintf(w, "median of %d rounds after a warm-up, the copy and every group alternating within each round; %d CPUs\n", cfg.Reps, runtime.NumCPU())
	fmt.Fprintf(w, "busbw = algbw·2(n−1)/n (NCCL-tests); copy = the same bytes streamed from one process to another over one socket;\n")
	fmt.Fprintf(w, "time = the slowest rank's; best = the fastest round's\n\n")
	fmt.Fprintf(w, "%10s %6s %9s %11s %11s %10s %11s %9s %11s\n", "size", "ranks", "time ms", "algbw GB/s", "busbw GB/s", "copy GB/s", "busbw/copy", "best ms", "best busbw")
	for _, r := range rows {
		fmt.Fprintf(w, "%10s %6d %9.2f %11.2f %11.2f %10.2f %10.0f%% %9.2f %11.2f\n", humanBytes(r.Bytes), r.Ranks, 1e3*r.TimeS, r.AlgBW, r.BusBW,
			r.CopyBW, 100*r.BusBW/r.CopyBW, 1e3*r.BestTimeS, r.BestBusBW)
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// --- the processes ---

// benchSpec is the first line a worker reads on stdin.
type benchSpec struct {
	Role       string `json:"role"` // "rank" or "copy"
	Rank       int    `json:"rank"`
	Size       int    `json:"size"`
	Addr       string `json:"addr"` // rendezvous (rank) or the copy receiver (copy)
	Secret     string `json:"secret"`
	ChunkBytes int    `json:"chunk_bytes"`
	ListenerFD int    `json:"listener_fd"` // rank 0: its rendezvous listener, inherited; 0: none
}

// benchProc is one started worker: commands go to its stdin, its lines
// come back on lines.
type benchProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startBenchProc(exe string, argv []string, spec benchSpec, files []*os.File) (*benchProc, error) {
	cmd := exec.Command(exe, argv...)
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = files
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &benchProc{cmd: cmd, in: in, lines: make(chan string, 4)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	b, _ := json.Marshal(spec)
	if _, err := fmt.Fprintf(in, "%s\n", b); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// line is the worker's next line, or an error after limit.
func (p *benchProc) line(limit time.Duration) (string, error) {
	select {
	case l, ok := <-p.lines:
		if !ok {
			return "", fmt.Errorf("worker pid %d exited", p.cmd.Process.Pid)
		}
		if msg, bad := strings.CutPrefix(l, "err "); bad {
			return "", fmt.Errorf("worker pid %d: %s", p.cmd.Process.Pid, msg)
		}
		return l, nil
	case <-time.After(limit):
		return "", fmt.Errorf("worker pid %d: no answer within %v", p.cmd.Process.Pid, limit)
	}
}

// stop closes the worker's stdin (it exits) and kills it by PID if it
// has not exited within 5 s.
func (p *benchProc) stop() {
	p.in.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// benchStep bounds one command of the benchmark.
const benchStep = 2 * time.Minute

// benchGroup is one group of rank processes.
type benchGroup struct{ procs []*benchProc }

func (g *benchGroup) size() int { return len(g.procs) }

func (g *benchGroup) stop() {
	for _, p := range g.procs {
		p.stop()
	}
}

// startBenchGroup starts n rank processes; rank 0 inherits a rendezvous
// listener on 127.0.0.1:0, so no port is guessed.
func startBenchGroup(exe string, argv []string, n, chunk int) (*benchGroup, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close() // f holds its own descriptor of the socket
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var key [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	g := &benchGroup{}
	for r := range n {
		spec := benchSpec{Role: "rank", Rank: r, Size: n, Addr: ln.Addr().String(), Secret: hex.EncodeToString(key[:]), ChunkBytes: chunk}
		var files []*os.File
		if r == 0 {
			spec.ListenerFD, files = 3, []*os.File{f}
		}
		p, err := startBenchProc(exe, argv, spec, files)
		if err != nil {
			return g, err
		}
		g.procs = append(g.procs, p)
	}
	for _, p := range g.procs {
		if _, err := p.line(time.Minute); err != nil {
			return g, fmt.Errorf("connect: %w", err)
		}
	}
	return g, nil
}

// allReduce has every rank all-reduce size bytes and returns the slowest
// rank's time.
func (g *benchGroup) allReduce(size int64) (float64, error) {
	for _, p := range g.procs {
		if _, err := fmt.Fprintf(p.in, "allreduce %d\n", size); err != nil {
			return 0, err
		}
	}
	slowest := 0.0
	for _, p := range g.procs {
		l, err := p.line(benchStep)
		if err != nil {
			return 0, err
		}
		var d float64
		if _, err := fmt.Sscanf(l, "t %g", &d); err != nil {
			return 0, fmt.Errorf("worker pid %d said %q", p.cmd.Process.Pid, l)
		}
		slowest = max(slowest, d)
	}
	return slowest, nil
}

// copyPair is the reference: a worker that streams bytes to this
// process over one loopback connection.
type copyPair struct {
	p    *benchProc
	conn net.Conn
	buf  []byte
}

func startCopyPair(exe string, argv []string) (*copyPair, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	p, err := startBenchProc(exe, argv, benchSpec{Role: "copy", Addr: ln.Addr().String()}, nil)
	if err != nil {
		return nil, err
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Minute))
	conn, err := ln.Accept()
	if err != nil {
		p.stop()
		return nil, err
	}
	return &copyPair{p: p, conn: conn}, nil
}

// time asks for size bytes and times their arrival (one round trip
// included: tens of microseconds on loopback).
func (c *copyPair) time(size int64) (float64, error) {
	if int64(len(c.buf)) != size {
		c.buf = make([]byte, size)
		for i := range c.buf {
			c.buf[i] = 1 // touched once, as the ranks' buffers are
		}
	}
	var req [8]byte
	binary.LittleEndian.PutUint64(req[:], uint64(size))
	c.conn.SetDeadline(time.Now().Add(benchStep))
	start := time.Now()
	if _, err := c.conn.Write(req[:]); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c.conn, c.buf); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

func (c *copyPair) stop() {
	c.conn.Close()
	c.p.stop()
}
