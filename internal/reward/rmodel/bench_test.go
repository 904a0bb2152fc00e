package rmodel

import (
	"context"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// BenchmarkSource_Stories260K scores 16 stories of about 64 tokens
// with a reward model on the stories260K backbone.
func BenchmarkSource_Stories260K(b *testing.B) {
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
	cfg := DefaultConfig()
	cfg.Model, cfg.Tok = s, tok
	src, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	samples := make([]grade.Sample, 16)
	for i := range samples {
		samples[i] = grade.Sample{Prompt: "Once upon a time, ", Response: strings.Repeat("the little dog ran to the park. ", 5+i%3)}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := src.Score(context.Background(), samples); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(samples))/b.Elapsed().Seconds(), "samples/s")
}
