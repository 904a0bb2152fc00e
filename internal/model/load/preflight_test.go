package load

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
)

// TestParamShapes_MatchParams: what each architecture's spec lists
// without allocating (model.Shaper) is exactly what its model's Params
// hold, for every tiny model (tied and untied heads, biases, q/k norms,
// GPT-2).
func TestParamShapes_MatchParams(t *testing.T) {
	for _, name := range []string{"llama", "mistral", "qwen2", "qwen3", "gpt2", "llama_seqcls"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := os.ReadFile(filepath.Join("testdata", "tiny", name, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			sp, err := parseConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			sh, ok := sp.Backbone.(model.Shaper)
			if !ok {
				t.Fatalf("%T lists no shapes", sp.Backbone)
			}
			m, err := sp.Backbone.New()
			if err != nil {
				t.Fatal(err)
			}
			var got, want []string
			for n, s := range sh.ParamShapes() {
				got = append(got, fmt.Sprint(n, s))
			}
			for _, p := range m.Params() {
				want = append(want, fmt.Sprint(p.Name, p.Tensor.Shape))
			}
			if !slices.Equal(got, want) {
				t.Errorf("shapes\n%v\nparams\n%v", got, want)
			}
		})
	}
}
