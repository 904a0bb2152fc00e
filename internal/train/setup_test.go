package train

import (
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model/load"
)

// TestSetup_SeqLimit: the trainers' token budget (sft, rm and dpo encode
// with Setup.Encoder) is --data.max_len or the model's position limit,
// whichever is shorter, and a max_len past the limit gets a warning.
func TestSetup_SeqLimit(t *testing.T) {
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := Setup{Bundle: b}
	for _, c := range []struct{ maxLen, want int }{{2048, 512}, {513, 512}, {512, 512}, {64, 64}} {
		enc, err := s.Encoder(data.Config{MaxLen: c.maxLen})
		if err != nil {
			t.Fatal(err)
		}
		note := s.SeqLimitNote(c.maxLen)
		if s.SeqLimit(c.maxLen) != c.want || enc.MaxLen != c.want || (note != "") != (c.maxLen > 512) {
			t.Errorf("max_len %d: limit %d, encoder %d, note %q; want %d", c.maxLen, s.SeqLimit(c.maxLen), enc.MaxLen, note, c.want)
		}
	}
	if note := s.SeqLimitNote(2048); !strings.Contains(note, "512 positions") {
		t.Errorf("note %q does not name the limit", note)
	}
}
