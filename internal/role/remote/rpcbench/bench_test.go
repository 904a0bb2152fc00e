package rpcbench

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/remote"
	"github.com/gorlhf/gorlhf/internal/role/remote/wire"
)

// The typical call: LogProbs of B = 32 sequences of a 32-token prompt and
// a 256-token response; the result is [B, A] = [32, 256] float32.
const (
	batch     = 32
	promptLen = 32
	respLen   = 256
)

func request() *role.LogProbsRequest {
	var s role.Sequences
	for i := range batch {
		toks := make([]int32, promptLen+respLen)
		for j := range toks {
			toks[j] = int32((i*7919 + j*104729) % 32000)
		}
		s.Tokens, s.PromptLens = append(s.Tokens, toks), append(s.PromptLens, promptLen)
	}
	return &role.LogProbsRequest{Seqs: s}
}

// answer is the server's work: a fixed [B, A] result shaped like req.
func answer(req *role.LogProbsRequest) *role.LogProbsResult {
	out := make(role.PerToken, req.Seqs.Len())
	for i := range out {
		out[i] = make([]float32, req.Seqs.ResponseLen(i))
		for j := range out[i] {
			out[i][j] = -float32(j+1) / 3
		}
	}
	return &role.LogProbsResult{LogProbs: out}
}

// caller makes one round trip.
type caller func(context.Context, *role.LogProbsRequest) (*role.LogProbsResult, error)

// candidate starts a loopback server and returns a client call and a stop.
type candidate struct {
	name  string
	start func(tb testing.TB) (caller, func())
}

var candidates = []candidate{
	{"remote", startRemote},
	{"nethttp+wire", startHTTP(wireCodec{})},
	{"nethttp+gob", startHTTP(gobCodec{})},
	{"connect+wire", startConnect},
	{"grpc+wire", startGRPC},
}

// codec is the subset of connect.Codec and grpc's encoding.Codec both
// benchmarks need.
type codec interface {
	Name() string
	Marshal(any) ([]byte, error)
	Unmarshal([]byte, any) error
}

type wireCodec struct{}

func (wireCodec) Name() string                    { return "gorlhf-wire" }
func (wireCodec) Marshal(v any) ([]byte, error)   { return wire.Marshal(v) }
func (wireCodec) Unmarshal(b []byte, v any) error { return wire.Unmarshal(b, v) }

type gobCodec struct{}

func (gobCodec) Name() string { return "gob" }
func (gobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(v)
	return b.Bytes(), err
}
func (gobCodec) Unmarshal(b []byte, v any) error { return gob.NewDecoder(bytes.NewReader(b)).Decode(v) }

func listen(tb testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// prober answers LogProbs with answer.
type prober struct{}

func (prober) LogProbs(_ context.Context, req role.LogProbsRequest) (role.LogProbsResult, error) {
	return *answer(&req), nil
}

// startRemote is package remote itself: plain net/http with the wire
// codec, plus the secret, handshake headers, deadlines and error codes.
func startRemote(tb testing.TB) (caller, func()) {
	const secret = "bench-secret-0123456789"
	srv, err := remote.NewServer(remote.ServerConfig{Addr: "127.0.0.1:0", Secret: secret, Version: "bench",
		Logger: slog.New(slog.DiscardHandler)}, remote.Hosted{Reference: prober{}})
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve()
	cfg := remote.DefaultConfig()
	cfg.Addr, cfg.Secret, cfg.Version = srv.Addr(), secret, "bench"
	conn, err := remote.Dial(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ref := conn.Hosted().Reference
	call := func(ctx context.Context, req *role.LogProbsRequest) (*role.LogProbsResult, error) {
		res, err := ref.LogProbs(ctx, *req)
		return &res, err
	}
	return call, func() { conn.Close(); srv.Close() }
}

// startHTTP is plain net/http (HTTP/1.1, keep-alive): POST a body, read
// a body.
func startHTTP(c codec) func(testing.TB) (caller, func()) {
	return func(tb testing.TB) (caller, func()) {
		ln := listen(tb)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := readBody(r.Body, r.ContentLength)
			var req role.LogProbsRequest
			if err == nil {
				err = c.Unmarshal(body, &req)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			out, _ := c.Marshal(answer(&req))
			w.Header().Set("Content-Length", strconv.Itoa(len(out)))
			w.Write(out)
		})}
		go srv.Serve(ln)
		url := "http://" + ln.Addr().String() + "/role/LogProbs"
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		call := func(ctx context.Context, req *role.LogProbsRequest) (*role.LogProbsResult, error) {
			body, err := c.Marshal(req)
			if err != nil {
				return nil, err
			}
			hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			resp, err := client.Do(hr)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			b, err := readBody(resp.Body, resp.ContentLength)
			if err != nil || resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("status %d: %v %s", resp.StatusCode, err, b)
			}
			var res role.LogProbsResult
			return &res, c.Unmarshal(b, &res)
		}
		return call, func() { srv.Close() }
	}
}

// readBody reads r whole, in one allocation when its length is known.
func readBody(r io.Reader, n int64) ([]byte, error) {
	if n < 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// startConnect is connect-go's Connect protocol (unary POST over
// HTTP/1.1) with the wire codec.
func startConnect(tb testing.TB) (caller, func()) {
	ln := listen(tb)
	const proc = "/gorlhf.role.v1.Actor/LogProbs"
	h := connect.NewUnaryHandler(proc, func(ctx context.Context, r *connect.Request[role.LogProbsRequest]) (*connect.Response[role.LogProbsResult], error) {
		return connect.NewResponse(answer(r.Msg)), nil
	}, connect.WithCodec(wireCodec{}))
	mux := http.NewServeMux()
	mux.Handle(proc, h)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	client := connect.NewClient[role.LogProbsRequest, role.LogProbsResult](hc, "http://"+ln.Addr().String()+proc, connect.WithCodec(wireCodec{}))
	call := func(ctx context.Context, req *role.LogProbsRequest) (*role.LogProbsResult, error) {
		res, err := client.CallUnary(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	return call, func() { srv.Close() }
}

// startGRPC is grpc-go (its own HTTP/2 transport) with the wire codec
// forced on both sides and a hand-written service description.
func startGRPC(tb testing.TB) (caller, func()) {
	ln := listen(tb)
	srv := grpc.NewServer(grpc.ForceServerCodec(wireCodec{}))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "gorlhf.role.v1.Actor",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "LogProbs", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req role.LogProbsRequest
			if err := dec(&req); err != nil {
				return nil, err
			}
			return answer(&req), nil
		}}},
	}, struct{}{})
	go srv.Serve(ln)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(wireCodec{})))
	if err != nil {
		tb.Fatal(err)
	}
	call := func(ctx context.Context, req *role.LogProbsRequest) (*role.LogProbsResult, error) {
		var res role.LogProbsResult
		return &res, conn.Invoke(ctx, "/gorlhf.role.v1.Actor/LogProbs", req, &res)
	}
	return call, func() { conn.Close(); srv.Stop() }
}

// payload is the bytes of one round trip in the wire encoding.
func payload(tb testing.TB) int64 {
	req := request()
	a, err := wire.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := wire.Marshal(answer(req))
	return int64(len(a) + len(b))
}

// TestCandidates checks every candidate returns the exact result.
func TestCandidates(t *testing.T) {
	req := request()
	want := answer(req)
	for _, c := range candidates {
		t.Run(c.name, func(t *testing.T) {
			call, stop := c.start(t)
			defer stop()
			got, err := call(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want.LogProbs {
				for j := range want.LogProbs[i] {
					if got.LogProbs[i][j] != want.LogProbs[i][j] {
						t.Fatalf("[%d,%d] = %v, want %v", i, j, got.LogProbs[i][j], want.LogProbs[i][j])
					}
				}
			}
		})
	}
}

// BenchmarkLogProbs is one caller, back to back: round-trip latency
// (ns/op) and payload throughput (MB/s, request + result bytes).
func BenchmarkLogProbs(b *testing.B) {
	req := request()
	for _, c := range candidates {
		b.Run(c.name, func(b *testing.B) {
			call, stop := c.start(b)
			defer stop()
			b.SetBytes(payload(b))
			ctx := context.Background()
			cpu := cpuTime()
			for b.Loop() {
				if _, err := call(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkLogProbsParallel is several callers at once (the driver
// overlapping reference, critic and reward calls).
func BenchmarkLogProbsParallel(b *testing.B) {
	req := request()
	for _, c := range candidates {
		b.Run(c.name, func(b *testing.B) {
			call, stop := c.start(b)
			defer stop()
			b.SetBytes(payload(b))
			b.SetParallelism(2)
			cpu := cpuTime()
			defer reportCPU(b, cpu)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := call(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// cpuTime is this process's user+system CPU time: client and server
// together, which a loaded machine inflates less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the CPU µs per call since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

// TestPayloadSizes logs the bytes of the typical call in each codec.
func TestPayloadSizes(t *testing.T) {
	req := request()
	res := answer(req)
	for _, c := range []codec{wireCodec{}, gobCodec{}} {
		a, err := c.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: request %d bytes, result %d bytes", c.Name(), len(a), len(b))
	}
}
