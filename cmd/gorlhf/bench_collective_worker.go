package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gorlhf/gorlhf/internal/collective"
)

// The processes `gorlhf bench collective` starts: `gorlhf bench
// collective --worker`, with a benchSpec on the first line of stdin.

// collectiveWorker is one process of the benchmark: a rank or the copy
// sender, as the spec on the first line of in says.
func collectiveWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	if !sc.Scan() {
		return errors.New("bench collective worker: no spec on stdin")
	}
	var spec benchSpec
	if err := json.Unmarshal(sc.Bytes(), &spec); err != nil {
		return fmt.Errorf("bench collective worker: spec: %w", err)
	}
	var err error
	switch spec.Role {
	case "rank":
		err = benchRank(ctx, spec, sc, out)
	case "copy":
		err = benchCopySender(ctx, spec)
	default:
		err = fmt.Errorf("unknown role %q", spec.Role)
	}
	if err != nil {
		fmt.Fprintf(out, "err %v\n", err)
		return fmt.Errorf("bench collective worker: %w", err)
	}
	return nil
}

// benchRank connects and then, for each "allreduce BYTES" line, runs a
// barrier and a timed all-reduce and prints "t SECONDS". The first
// all-reduce of each size fills the buffer with small integers and checks
// the exact sum.
func benchRank(ctx context.Context, spec benchSpec, sc *bufio.Scanner, out io.Writer) error {
	cfg := collective.Config{Rank: spec.Rank, Size: spec.Size, Addr: spec.Addr, Secret: spec.Secret, ChunkBytes: spec.ChunkBytes,
		Timeout: time.Minute, OpTimeout: benchStep}
	if spec.ListenerFD != 0 {
		f := os.NewFile(uintptr(spec.ListenerFD), "rendezvous")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("inherited listener: %w", err)
		}
		cfg.Listener = ln
	}
	c, err := collective.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintln(out, "ready")
	var buf []float32
	for sc.Scan() {
		var size int64
		if _, err := fmt.Sscanf(sc.Text(), "allreduce %d", &size); err != nil {
			return fmt.Errorf("command %q", sc.Text())
		}
		fresh := int64(len(buf)) != size/4
		if fresh {
			buf = make([]float32, size/4)
			for i := range buf {
				buf[i] = float32((i + spec.Rank) % 7)
			}
		}
		if err := c.Barrier(ctx); err != nil {
			return err
		}
		start := time.Now()
		if err := c.AllReduce(ctx, buf); err != nil {
			return err
		}
		d := time.Since(start)
		if fresh {
			if err := checkBenchSum(buf, spec.Size); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "t %g\n", d.Seconds())
	}
	return sc.Err()
}

// checkBenchSum checks an all-reduce of (i + rank) mod 7 over size ranks.
func checkBenchSum(buf []float32, size int) error {
	for i, v := range buf {
		want := 0
		for r := range size {
			want += (i + r) % 7
		}
		if v != float32(want) {
			return fmt.Errorf("all-reduce of %d values: [%d] = %v, want %d", len(buf), i, v, want)
		}
	}
	return nil
}

// benchCopySender dials the receiver and answers each 8-byte request
// with that many bytes.
func benchCopySender(ctx context.Context, spec benchSpec) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", spec.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	var buf []byte
	var req [8]byte
	for {
		if _, err := io.ReadFull(conn, req[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the receiver is done
			}
			return err
		}
		n := binary.LittleEndian.Uint64(req[:])
		if uint64(len(buf)) != n {
			buf = make([]byte, n)
			for i := range buf {
				buf[i] = 1
			}
		}
		if _, err := conn.Write(buf); err != nil {
			return err
		}
	}
}
