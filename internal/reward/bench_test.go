package reward

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// BenchmarkServer_RoundTrip measures one loopback request of 16 samples
// through Remote and Server with the math grader behind it: the protocol's
// overhead.
func BenchmarkServer_RoundTrip(b *testing.B) {
	math, _ := grade.NewRule(grade.RuleConfig{Kind: grade.RuleMath})
	cfg := DefaultServerConfig()
	cfg.Window = 0
	srv, _ := NewServer(math, cfg)
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	r, _ := NewRemote(fastRemote(hs.URL + DefaultPath))
	samples := make([]grade.Sample, 16)
	for i := range samples {
		samples[i] = grade.Sample{Prompt: "Q ", Response: "so #### 12", Label: "12"}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := r.Score(context.Background(), samples); err != nil {
			b.Fatal(err)
		}
	}
}
