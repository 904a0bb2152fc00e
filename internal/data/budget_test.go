package data

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// storyText is n bytes of made-up story text with spaces, punctuation,
// new lines and a few multi-byte runes.
func storyText(n int, seed uint64) string {
	words := []string{"Once", "upon", "a", "time,", "there", "was", "a", "little", "girl", "named", "Lily.", "She",
		"liked", "to", "play", "outside", "café", "—", "naïve", "\n", "  ", "日本", "\"Hi!\"", "123"}
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(5) > 0 {
			b.WriteByte(' ')
		}
	}
	return b.String()[:n]
}

// TestEncodePrefix: the first n tokens of a long text are those of its
// whole encoding, for a SentencePiece-style (tok512) and byte-level BPE
// (GPT-2, Qwen3) tokenizers, with and without special-token parsing.
func TestEncodePrefix(t *testing.T) {
	toks := map[string]tokenizer.Tokenizer{"tok512": tok512(t)}
	for _, name := range []string{"gpt2", "qwen3"} {
		tok, err := tokenizer.Load(filepath.Join("..", "tokenizer", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		toks[name] = tok
	}
	for name, tok := range toks {
		for seed := range uint64(4) {
			text := storyText(40_000, seed)
			for _, n := range []int{1, 16, 64, 300} {
				opts := tokenizer.EncodeOptions{ParseSpecial: seed%2 == 0}
				full := tok.EncodeWith(text, opts)
				if got := encodePrefix(tok, text, opts, n); !slices.Equal(got, full[:n]) {
					t.Errorf("%s seed %d n %d: prefix differs from the whole encoding", name, seed, n)
				}
			}
			short := storyText(100, seed)
			if got := encodePrefix(tok, short, tokenizer.EncodeOptions{}, 10_000); !slices.Equal(got, tok.Encode(short)) {
				t.Errorf("%s: a short text is not encoded whole", name)
			}
		}
	}
}

// TestReadSFT_HugeLine (issue 17): one 50 MB dataset line costs memory in
// proportion to the line (a few copies while it is read), not to its
// tokenization (gigabytes before), and its sample is the first max_len
// tokens of the whole record.
func TestReadSFT_HugeLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	big := storyText(50_000_000, 7)
	line, _ := json.Marshal(map[string]string{"input": "Tell me a story.", "output": big})
	w.Write(line)
	w.WriteString("\n{\"input\": \"Hi\", \"output\": \"Hello there.\"}\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	line = nil

	e := encoder(t, false, "User: {}\nAssistant: ", 64)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	samples, rep, err := e.ReadSFT(path, 0, SFTKeys{InputKey: "input", OutputKey: "output"})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("reading and encoding a %d MB line allocated %d MB", len(big)>>20, alloc>>20)
	if alloc > 600<<20 {
		t.Errorf("allocated %d MB for a %d MB line", alloc>>20, len(big)>>20)
	}
	if len(samples) != 2 || rep.Truncated != 1 || len(samples[0].IDs) != 64 {
		t.Fatalf("%d samples, report %s", len(samples), rep)
	}
	want, _ := e.encodeMasked("User: Tell me a story.\nAssistant: "+big[:200_000], []span{{len("User: Tell me a story.\nAssistant: "), 1 << 40}}, false)
	if !slices.Equal(samples[0].IDs, want.IDs) || fmt.Sprint(samples[0].Loss) != fmt.Sprint(want.Loss) {
		t.Errorf("the huge line's sample differs from its first 64 tokens:\n%v\n%v", samples[0].IDs, want.IDs)
	}
}
