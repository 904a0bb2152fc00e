package remote

import (
	"context"
	"testing"

	"github.com/gorlhf/gorlhf/internal/role"
)

// fixedProber answers LogProbs with a fixed [B, A] result shaped like the
// request, so that the benchmark measures the transport alone.
type fixedProber struct{}

func (fixedProber) LogProbs(_ context.Context, req role.LogProbsRequest) (role.LogProbsResult, error) {
	out := make(role.PerToken, req.Seqs.Len())
	for i := range out {
		out[i] = make([]float32, req.Seqs.ResponseLen(i))
		for j := range out[i] {
			out[i][j] = -float32(j+1) / 3
		}
	}
	return role.LogProbsResult{LogProbs: out}, nil
}

// BenchmarkConn_LogProbs is the typical call through this package's
// server and client on loopback: B = 32 sequences of a 32-token prompt
// and a 256-token response, and its [32, 256] float32 result (MB/s counts
// request and result bytes). internal/role/remote/rpcbench runs the same
// call over the other candidates.
func BenchmarkConn_LogProbs(b *testing.B) {
	var s role.Sequences
	for i := range 32 {
		toks := make([]int32, 32+256)
		for j := range toks {
			toks[j] = int32((i*7919 + j*104729) % 32000)
		}
		s.Tokens, s.PromptLens = append(s.Tokens, toks), append(s.PromptLens, 32)
	}
	req := role.LogProbsRequest{Seqs: s}
	srv := startServer(b, serverConfig(nil, quietLogger()), Hosted{Reference: fixedProber{}})
	ref := dial(b, clientConfig(srv.Addr(), nil, RoleReference)).Hosted().Reference
	b.SetBytes(int64(32*(32+256)*4 + 32*256*4))
	ctx := context.Background()
	for b.Loop() {
		if _, err := ref.LogProbs(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
