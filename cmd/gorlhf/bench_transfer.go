package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/transfer"
)

// transferBenchConfig is what `gorlhf bench transfer` measures.
type transferBenchConfig struct {
	Params int // size of the random Llama-shaped set; 0 skips it
	Reps   int // timed rounds
}

// runBenchTransfer times one weight sync (actor → rollout) three ways, side
// by side in alternating rounds: a plain loopback TCP copy of the payload,
// the HTTP stream with checksum and decode into tensors, and the /dev/shm
// shortcut; for stories260K and a random Llama-shaped parameter set.
func runBenchTransfer(ctx context.Context, args []string) error {
	fs := newFlagSet("bench transfer", "bench transfer [--params 110000000] [--reps 5]")
	cfg := transferBenchConfig{}
	fs.IntVar(&cfg.Params, "params", 110_000_000, "parameters of the random Llama-shaped set (hidden 768, vocab 32000, MLP 2048; layers to match); 0 skips it")
	fs.IntVar(&cfg.Reps, "reps", 5, "timed rounds; each round runs every path once, in rotating order")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench transfer: unexpected argument %q", fs.Arg(0))
	}
	if cfg.Reps < 1 || cfg.Params < 0 {
		return fmt.Errorf("bench transfer: --reps must be ≥ 1 and --params ≥ 0, got %d and %d", cfg.Reps, cfg.Params)
	}
	return benchTransfer(ctx, cfg, os.Stdout)
}

// benchTransfer runs the measurement and prints one table per set to w.
func benchTransfer(ctx context.Context, cfg transferBenchConfig, w io.Writer) error {
	l, err := load.Load("stories260K", load.Options{})
	if err != nil {
		return fmt.Errorf("bench transfer: %w", err)
	}
	sets := []namedParams{{"stories260K", l.Params()}}
	if cfg.Params > 0 {
		sets = append(sets, randomLlama(cfg.Params))
	}
	fmt.Fprintf(w, "weight sync, %d rounds (medians; paths alternate within each round); GOMAXPROCS=%d\n", cfg.Reps, runtime.GOMAXPROCS(0))
	for _, s := range sets {
		if err := benchTransferSet(ctx, s, cfg.Reps, w); err != nil {
			return fmt.Errorf("bench transfer: %s: %w", s.name, err)
		}
	}
	return nil
}

type namedParams struct {
	name string
	ps   nn.Params
}

// randomLlama returns a Llama-shaped parameter set (HF names, hidden 768,
// vocab 32000, MLP 2048, tied head) with as many layers as bring it
// closest to n parameters, filled with random values.
func randomLlama(n int) namedParams {
	const c, v, f = 768, 32000, 2048
	perLayer := 4*c*c + 3*c*f + 2*c
	layers := max(1, int((float64(n-v*c-c)/float64(perLayer))+0.5))
	rng := mrand.New(mrand.NewPCG(1, 2))
	mk := func(shape ...int) *tensor.Tensor {
		t := tensor.New(shape...)
		for i := range t.Data {
			t.Data[i] = float32(int32(rng.Uint32())) * 0x1p-33
		}
		return t
	}
	ps := nn.Params{{Name: "model.embed_tokens.weight", Tensor: mk(v, c)}}
	for i := range layers {
		pre := fmt.Sprintf("model.layers.%d.", i)
		ps = append(ps,
			nn.Param{Name: pre + "input_layernorm.weight", Tensor: mk(c)},
			nn.Param{Name: pre + "self_attn.q_proj.weight", Tensor: mk(c, c)},
			nn.Param{Name: pre + "self_attn.k_proj.weight", Tensor: mk(c, c)},
			nn.Param{Name: pre + "self_attn.v_proj.weight", Tensor: mk(c, c)},
			nn.Param{Name: pre + "self_attn.o_proj.weight", Tensor: mk(c, c)},
			nn.Param{Name: pre + "post_attention_layernorm.weight", Tensor: mk(c)},
			nn.Param{Name: pre + "mlp.gate_proj.weight", Tensor: mk(f, c)},
			nn.Param{Name: pre + "mlp.up_proj.weight", Tensor: mk(f, c)},
			nn.Param{Name: pre + "mlp.down_proj.weight", Tensor: mk(c, f)},
		)
	}
	ps = append(ps, nn.Param{Name: "model.norm.weight", Tensor: mk(c)})
	return namedParams{fmt.Sprintf("random Llama (%d layers)", layers), ps}
}

// transferRig is one set's publisher, servers and receivers.
type transferRig struct {
	pub            *transfer.Publisher
	url            string
	plainAddr      string
	plainBuf       []byte
	mem            []byte // the payload, when there is no /dev/shm file
	viaHTTP, viaSh *transfer.Receiver
	shm            bool
}

func benchTransferSet(ctx context.Context, s namedParams, reps int, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rig, err := newTransferRig(ctx, s.ps)
	if err != nil {
		return err
	}
	defer rig.pub.Close()
	paths := []struct {
		name string
		run  func(ctx context.Context, version int64) error
	}{
		{"plain TCP copy (io.Copy, sendfile)", rig.plainCopy},
		{"HTTP stream + CRC32C + decode", func(ctx context.Context, v int64) error { return rig.fetch(ctx, rig.viaHTTP, v, "http") }},
	}
	if rig.shm {
		paths = append(paths, struct {
			name string
			run  func(ctx context.Context, version int64) error
		}{"/dev/shm + CRC32C + decode", func(ctx context.Context, v int64) error { return rig.fetch(ctx, rig.viaSh, v, "shm") }})
	}
	times := make([][]time.Duration, len(paths))
	var publish []time.Duration
	var size int64
	for round := range reps + 1 { // round 0 warms up (staging, page cache) and is not counted
		version := int64(round + 1)
		start := time.Now()
		m, err := rig.pub.Publish(ctx, "actor", transfer.Weights{Version: version, Params: s.ps})
		if err != nil {
			return err
		}
		size = m.Size
		if !rig.shm {
			if rig.mem, err = transfer.Marshal(version, s.ps); err != nil {
				return err
			}
		}
		if round > 0 {
			publish = append(publish, time.Since(start))
		}
		for k := range paths {
			i := (k + round) % len(paths) // rotate the order every round
			start := time.Now()
			if err := paths[i].run(ctx, version); err != nil {
				return fmt.Errorf("%s: %w", paths[i].name, err)
			}
			if round > 0 {
				times[i] = append(times[i], time.Since(start))
			}
		}
	}
	fmt.Fprintf(w, "\n%s: %d params, payload %.1f MB\n", s.name, s.ps.Count(), float64(size)/1e6)
	fmt.Fprintf(w, "  %-38s %10s %10s %9s\n", "path", "median", "MB/s", "vs copy")
	plain := medianDuration(times[0])
	for i, p := range paths {
		d := medianDuration(times[i])
		fmt.Fprintf(w, "  %-38s %10s %10.0f %8.0f%%\n", p.name, d.Round(10*time.Microsecond), float64(size)/d.Seconds()/1e6, 100*plain.Seconds()/d.Seconds())
	}
	d := medianDuration(publish)
	fmt.Fprintf(w, "  %-38s %10s %10.0f %9s\n", "publish (encode + CRC32C, sender)", d.Round(10*time.Microsecond), float64(size)/d.Seconds()/1e6, "")
	for _, h := range []struct {
		name string
		new  func() hash.Hash
	}{{"CRC32C", func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }}, {"SHA-256", sha256.New}} {
		d := timeHash(rig.plainBuf, h.new, reps)
		fmt.Fprintf(w, "  %-38s %10s %10.0f %8.0f%%  (copy + this checksum alone)\n", "checksum only: "+h.name, d.Round(10*time.Microsecond),
			float64(size)/d.Seconds()/1e6, 100*plain.Seconds()/(plain+d).Seconds())
	}
	return nil
}

// timeHash returns the median time to hash b, in memory, on one core.
func timeHash(b []byte, mk func() hash.Hash, reps int) time.Duration {
	var ds []time.Duration
	for range reps {
		h := mk()
		start := time.Now()
		h.Write(b)
		h.Sum(nil)
		ds = append(ds, time.Since(start))
	}
	return medianDuration(ds)
}

// newTransferRig starts a publisher and a plain TCP server on loopback and
// two receivers (stream only, and with the /dev/shm shortcut).
func newTransferRig(ctx context.Context, src nn.Params) (*transferRig, error) {
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, err
	}
	cfg := transfer.DefaultConfig()
	cfg.Token = transfer.Secret(hex.EncodeToString(tok[:]))
	st, err := os.Stat(cfg.ShmDir)
	shm := err == nil && st.IsDir()
	pub, err := transfer.NewPublisher(cfg)
	if err != nil {
		return nil, err
	}
	rig := &transferRig{pub: pub, shm: shm}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go transfer.Serve(ctx, ln, pub)
	rig.url = transfer.URL(transfer.Addr(ln), "actor")
	if rig.plainAddr, err = rig.servePlain(ctx); err != nil {
		return nil, err
	}
	dst := make(nn.Params, len(src))
	for i, p := range src {
		dst[i] = nn.Param{Name: p.Name, Tensor: tensor.New(p.Tensor.Shape...)}
	}
	stream := cfg
	stream.ShmDir = ""
	if rig.viaHTTP, err = newBenchReceiver(stream, dst); err != nil {
		return nil, err
	}
	if rig.viaSh, err = newBenchReceiver(cfg, dst); err != nil {
		return nil, err
	}
	return rig, nil
}

func newBenchReceiver(cfg transfer.Config, dst nn.Params) (*transfer.Receiver, error) {
	c, err := transfer.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return transfer.NewReceiver(c, dst, 0)
}

// servePlain accepts connections and writes the current snapshot's bytes
// to each: io.Copy from the file (sendfile), or from memory.
func (rig *transferRig) servePlain(ctx context.Context) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			rig.sendSnapshot(conn)
			conn.Close()
		}
	}()
	return ln.Addr().String(), nil
}

func (rig *transferRig) sendSnapshot(conn net.Conn) {
	m, _ := rig.pub.Latest("actor")
	if m.Path == "" {
		conn.Write(rig.mem)
		return
	}
	f, err := os.Open(m.Path)
	if err != nil {
		return
	}
	defer f.Close()
	io.Copy(conn, f)
}

// plainCopy reads the payload over a fresh loopback connection into a
// buffer of its size (allocated and touched once).
func (rig *transferRig) plainCopy(ctx context.Context, _ int64) error {
	m, _ := rig.pub.Latest("actor")
	if int64(len(rig.plainBuf)) != m.Size {
		rig.plainBuf = make([]byte, m.Size)
		for i := range rig.plainBuf {
			rig.plainBuf[i] = 1
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", rig.plainAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = io.ReadFull(conn, rig.plainBuf)
	return err
}

func (rig *transferRig) fetch(ctx context.Context, r *transfer.Receiver, version int64, via string) error {
	m, err := r.Fetch(ctx, rig.url, version)
	if err == nil && m.Via != via {
		err = fmt.Errorf("went via %s, want %s", m.Via, via)
	}
	return err
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
