package reward

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/load"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// BenchmarkRuleSource_MathGSM8K grades the 54 real GSM8K solutions.
func BenchmarkRuleSource_MathGSM8K(b *testing.B) {
	recs := readGSM8K(b)
	samples := make([]Sample, len(recs))
	for i, r := range recs {
		samples[i] = Sample{Response: r.Answer, Label: r.Answer}
	}
	src, _ := NewRule(RuleConfig{Kind: RuleMath})
	b.ResetTimer()
	for range b.N {
		if _, err := src.Score(context.Background(), samples); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(samples))/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkModelSource_Stories260K scores 16 stories of about 64 tokens
// with a reward model on the stories260K backbone.
func BenchmarkModelSource_Stories260K(b *testing.B) {
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		b.Fatal(err)
	}
	s := head.NewScoreModel(l.Model, 64)
	s.Head.Init(tt.Rand(1))
	cfg := DefaultModelConfig()
	cfg.Model, cfg.Tok = s, tok
	src, err := NewModelSource(cfg)
	if err != nil {
		b.Fatal(err)
	}
	samples := make([]Sample, 16)
	for i := range samples {
		samples[i] = Sample{Prompt: "Once upon a time, ", Response: strings.Repeat("the little dog ran to the park. ", 5+i%3)}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := src.Score(context.Background(), samples); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(samples))/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkServer_RoundTrip measures one loopback request of 16 samples
// through Remote and Server with the math grader behind it: the protocol's
// overhead.
func BenchmarkServer_RoundTrip(b *testing.B) {
	math, _ := NewRule(RuleConfig{Kind: RuleMath})
	cfg := DefaultServerConfig()
	cfg.Window = 0
	srv, _ := NewServer(math, cfg)
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	r, _ := NewRemote(fastRemote(hs.URL + DefaultPath))
	samples := make([]Sample, 16)
	for i := range samples {
		samples[i] = Sample{Prompt: "Q ", Response: "so #### 12", Label: "12"}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := r.Score(context.Background(), samples); err != nil {
			b.Fatal(err)
		}
	}
}
