package grade

import (
	"context"
	"testing"
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
