package data

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

func TestReadFile_JSONL(t *testing.T) {
	const content = `{"input": "a", "output": "b"}

{"input": "c",
[1, 2]
{"input": "d", "output": "e"}
`
	t.Run("Plain", func(t *testing.T) {
		checkJSONL(t, writeFile(t, "x.jsonl", content))
	})
	t.Run("Gzip", func(t *testing.T) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte(content))
		zw.Close()
		checkJSONL(t, writeFile(t, "x.jsonl.gz", buf.String()))
	})
	// A UTF-8 byte order mark (as Windows editors write) is not part of
	// line 1, plain or gzipped.
	t.Run("BOM", func(t *testing.T) {
		checkJSONL(t, writeFile(t, "x.jsonl", "\uFEFF"+content))
	})
	t.Run("GzipBOM", func(t *testing.T) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte("\uFEFF" + content))
		zw.Close()
		checkJSONL(t, writeFile(t, "x.jsonl.gz", buf.String()))
	})
	t.Run("Missing", func(t *testing.T) {
		if _, _, err := ReadFile(filepath.Join(t.TempDir(), "nope.jsonl")); err == nil {
			t.Fatal("missing file accepted")
		}
	})
}

func checkJSONL(t *testing.T, path string) {
	t.Helper()
	recs, rep, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || rep.Total != 4 || rep.SkippedTotal() != 2 {
		t.Fatalf("got %d records, report %s", len(recs), rep)
	}
	if recs[1].Pos.String() != path+":5" || string(recs[1].Fields["output"]) != `"e"` {
		t.Fatalf("second record %+v", recs[1])
	}
	if got := rep.Skipped["invalid JSON"]; len(got) != 1 || got[0].Line != 3 {
		t.Fatalf("invalid JSON reported at %v", got)
	}
	if got := rep.Skipped["not a JSON object"]; len(got) != 1 || got[0].Line != 4 {
		t.Fatalf("array line reported at %v", got)
	}
	if s := rep.String(); !strings.Contains(s, path+":3") || !strings.Contains(s, path+":4") {
		t.Fatalf("report does not name the lines: %s", s)
	}
}

func TestReadFile_JSONArray(t *testing.T) {
	p := writeFile(t, "x.json", `[{"a": 1}, 2, {"a": 3}]`)
	recs, rep, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || rep.Skipped["not a JSON object"][0].String() != p+":element 2" {
		t.Fatalf("records %v, report %s", recs, rep)
	}
	if recs, _, err := ReadFile(writeFile(t, "bom.json", "\uFEFF"+`[{"a": 1}]`)); err != nil || len(recs) != 1 {
		t.Errorf("array after a byte order mark: %v, %v", recs, err)
	}
	if _, _, err := ReadFile(writeFile(t, "tail.json", `[{"a": 1}] [{"a": 2}]`)); err == nil || !strings.Contains(err.Error(), "trailing data") {
		t.Errorf("trailing data after the array: %v", err)
	}
}

// parquetRow is the layout of a Hugging Face chat dataset exported to Parquet.
type parquetRow struct {
	Prompt   string       `parquet:"prompt"`
	Messages []parquetMsg `parquet:"messages,list"`
	Score    float64      `parquet:"score"`
}

type parquetMsg struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

func TestReadFile_Parquet(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.parquet")
	rows := []parquetRow{
		{Prompt: "hi", Messages: []parquetMsg{{"user", "hi"}, {"assistant", "yo"}}, Score: 1.5},
		{Prompt: "x", Messages: []parquetMsg{{"user", "q"}}, Score: -2},
	}
	if err := parquet.WriteFile(p, rows); err != nil {
		t.Fatal(err)
	}
	recs, rep, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || rep.Total != 2 {
		t.Fatalf("got %d records, report %s", len(recs), rep)
	}
	v, err := field(recs[0], "messages")
	if err != nil || !v.IsChat || len(v.Messages) != 2 || v.Messages[1].Content != "yo" || v.Messages[1].Role != "assistant" {
		t.Fatalf("messages %+v, %v", v, err)
	}
	if v, err := field(recs[1], "prompt"); err != nil || v.Text != "x" {
		t.Fatalf("prompt %+v, %v", v, err)
	}
	if m, err := number(recs[1], "score"); err != nil || m != -2 {
		t.Fatalf("score %v, %v", m, err)
	}
	if recs[1].Pos.String() != p+":row 2" {
		t.Fatalf("position %s", recs[1].Pos)
	}
	t.Run("Corrupt", func(t *testing.T) {
		data, _ := os.ReadFile(p)
		bad := writeFile(t, "bad.parquet", string(data[:len(data)/2]))
		if _, _, err := ReadFile(bad); err == nil {
			t.Fatal("truncated parquet file accepted")
		}
	})
}

func TestReadFiles(t *testing.T) {
	a := writeFile(t, "a.jsonl", "{\"k\": 1}\n{\"k\": 2}\n")
	b := writeFile(t, "b.jsonl", "{\"k\": 3}\n")
	recs, rep, err := ReadFiles(a+", "+b, 0)
	if err != nil || len(recs) != 3 || rep.Total != 3 {
		t.Fatalf("%d records, %v, %v", len(recs), rep, err)
	}
	if recs, _, _ := ReadFiles(a+","+b, 2); len(recs) != 2 {
		t.Fatalf("max samples: %d records", len(recs))
	}
	bad := writeFile(t, "bad.jsonl", "nope\n[]\n")
	if _, _, err := ReadFiles(bad, 0); err == nil || !strings.Contains(err.Error(), bad+":1") {
		t.Fatalf("dataset without usable records: %v", err)
	}
}

func TestField(t *testing.T) {
	rec := Record{Fields: map[string]json.RawMessage{
		"s":     json.RawMessage(`"text"`),
		"m":     json.RawMessage(`[{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]}]`),
		"n":     json.RawMessage(`null`),
		"num":   json.RawMessage(`3`),
		"norol": json.RawMessage(`[{"content": "a"}]`),
	}}
	cases := []struct {
		key     string
		want    string
		wantErr string
	}{
		{"s", "text", ""},
		{"m", "a|bc", ""},
		{"n", "", `key "n" is null`},
		{"num", "", "neither a string nor a list of messages"},
		{"norol", "", "no role"},
		{"absent", "", `missing key "absent"`},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			v, err := field(rec, c.key)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			got := v.Text
			if v.IsChat {
				var parts []string
				for _, m := range v.Messages {
					parts = append(parts, m.Content)
				}
				got = strings.Join(parts, "|")
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
