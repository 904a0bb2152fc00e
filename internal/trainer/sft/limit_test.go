package sft

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainer_PositionLimit: --data.max_len 2048 on stories260K (512
// positions) cuts sequences at 512 tokens, not 2048, and the run log
// says so; with max_len under the limit nothing changes.
func TestTrainer_PositionLimit(t *testing.T) {
	long := strings.Repeat("Lily saw a big dog in the park and ran to it. ", 60) // ~700 tokens
	var b strings.Builder
	for _, s := range append(stories[:3], [2]string{"What happened?", long}) {
		fmt.Fprintf(&b, "{\"question\": %q, \"answer\": %q}\n", s[0], s[1])
	}
	path := filepath.Join(t.TempDir(), "long.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := testConfig(t, path)
	c.Data.MaxLen = 2048
	tr := newTrainer(t, c)
	longest := 0
	for _, s := range tr.train {
		longest = max(longest, len(s.IDs))
	}
	if longest != 512 {
		t.Errorf("longest sample %d tokens, want it cut at the model's 512 positions", longest)
	}
	tr.s.Close()
	log, err := os.ReadFile(filepath.Join(c.Train.Ckpt.OutputDir, "train.log"))
	if err != nil || !strings.Contains(string(log), "--data.max_len 2048 is more than the model's 512 positions") {
		t.Errorf("train.log (%v) lacks the position-limit warning:\n%s", err, log)
	}

	c = testConfig(t, path)
	c.Data.MaxLen = 300
	tr = newTrainer(t, c)
	if n := len(tr.train[3].IDs); n != 300 {
		t.Errorf("with max_len 300 the long sample has %d tokens", n)
	}
	tr.s.Close()
}
