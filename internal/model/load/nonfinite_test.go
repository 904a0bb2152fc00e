package load

import (
	"bytes"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// TestLoad_NonFiniteWeights (issue 17): a model whose weights are NaN
// loads (it is a valid file) but says so, in Warnings and on the logger.
func TestLoad_NonFiniteWeights(t *testing.T) {
	l, err := Load(DefaultModel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Warnings) != 0 {
		t.Fatalf("stories260K warns: %v", l.Warnings)
	}
	for _, c := range []struct {
		name string
		set  func(i int, v float32) float32
		want string
	}{
		{"all", func(int, float32) float32 { return float32(math.NaN()) }, "every weight"},
		{"some", func(i int, v float32) float32 {
			if i == 3 {
				return float32(math.Inf(1))
			}
			return v
		}, "1 of"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, _ := Load(DefaultModel, Options{})
			for i, p := range m.Params() {
				if i == 1 || c.name == "all" {
					for j := range p.Tensor.Data {
						p.Tensor.Data[j] = c.set(j, p.Tensor.Data[j])
					}
				}
			}
			dir := filepath.Join(t.TempDir(), "nan")
			if err := Save(dir, m.Module(), m.Config, safetensors.F32); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			back, err := Load(dir, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if err != nil {
				t.Fatal(err)
			}
			w := strings.Join(back.Warnings, "\n")
			if !strings.Contains(w, c.want) || !strings.Contains(w, "NaN or infinite") || !strings.Contains(log.String(), "NaN or infinite") {
				t.Errorf("warnings %q, log %q", w, log.String())
			}
		})
	}
}
