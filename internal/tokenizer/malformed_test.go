package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyJSON is a valid byte-level tokenizer.json with five tokens; the
// malformed cases below each break one field of it.
const tinyJSON = `{
 "added_tokens": [{"id": 5, "content": "<x>", "special": true}],
 "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}]},
 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
 "decoder": {"type": "ByteLevel"},
 "model": {"type": "BPE", "dropout": null, "unk_token": null,
   "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4},
   "merges": ["a b", "Ġ ab"]}
}`

func TestParseHF_Tiny(t *testing.T) {
	tok, err := ParseHF([]byte(tinyJSON))
	if err != nil {
		t.Fatal(err)
	}
	got := tok.EncodeWith("ab ab<x>ba", EncodeOptions{ParseSpecial: true})
	want := []int{2, 4, 5, 1, 0}
	if !equalInts(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if d := tok.Decode(got); d != "ab ab<x>ba" {
		t.Errorf("Decode = %q", d)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseHF_Malformed(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"not json", tinyJSON, `{"model": `, "parse tokenizer.json"},
		{"top level array", tinyJSON, `[]`, "parse tokenizer.json"},
		{"no model", `"model": {`, `"modelx": {`, "model: missing"},
		{"model type", `"type": "BPE"`, `"type": "WordPiece"`, "model.type"},
		{"vocab list", `"vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4}`, `"vocab": ["a"]`, "model.vocab"},
		{"vocab null", `"vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4}`, `"vocab": null`, "model.vocab: missing"},
		{"vocab id string", `"a": 0`, `"a": "zero"`, `model.vocab["a"]`},
		{"vocab id negative", `"a": 0`, `"a": -1`, `model.vocab["a"]`},
		{"vocab id fraction", `"a": 0`, `"a": 0.5`, `model.vocab["a"]`},
		{"vocab id huge", `"a": 0`, `"a": 999999999999`, `model.vocab["a"]`},
		{"added id huge", `{"id": 5, `, `{"id": 99999999999, `, "added_tokens[0].id"},
		{"merge unknown token", `"a b"`, `"a c"`, "model.merges[0]"},
		{"merge unknown result", `"Ġ ab"`, `"Ġ b"`, "model.merges[1]"},
		{"merge no space", `"a b"`, `"ab"`, "model.merges[0]"},
		{"merge triple", `"a b"`, `["a", "b", "c"]`, "model.merges[0]"},
		{"merge single", `"a b"`, `["a"]`, "model.merges[0]"},
		{"merge number", `"a b"`, `7`, "model.merges[0]"},
		{"merges object", `["a b", "Ġ ab"]`, `{"a": "b"}`, "model.merges"},
		{"unk missing", `"unk_token": null`, `"unk_token": "<unk>"`, "model.unk_token"},
		{"dropout", `"dropout": null`, `"dropout": 0.1`, "model.dropout"},
		{"added id missing", `{"id": 5, `, `{`, "added_tokens[0].id"},
		{"added content type", `"content": "<x>"`, `"content": 7`, "added_tokens"},
		{"added content empty", `"content": "<x>"`, `"content": ""`, "added_tokens[0].content"},
		{"normalizer type", `{"type": "NFC"}`, `{"type": "Precompiled"}`, "normalizer.normalizers[0].type"},
		{"normalizer no type", `{"type": "NFC"}`, `{}`, "normalizer.normalizers[0].type"},
		{"pre type", `"type": "ByteLevel", "add_prefix_space"`, `"type": "Whitespace", "add_prefix_space"`, "pre_tokenizer.type"},
		{"split regex", `{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}`,
			`{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "a(?=b)"}, "behavior": "Isolated"}]}`,
			"pre_tokenizer.pretokenizers[0].pattern.Regex"},
		{"split behavior", `{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}`,
			`{"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}`, "pre_tokenizer.behavior"},
		{"split pattern", `{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}`,
			`{"type": "Split", "pattern": {}, "behavior": "Isolated"}`, "pre_tokenizer.pattern"},
		{"decoder type", `"decoder": {"type": "ByteLevel"}`, `"decoder": {"type": "WordPiece"}`, "decoder.type"},
		{"decoder strip", `"decoder": {"type": "ByteLevel"}`, `"decoder": {"type": "Sequence", "decoders": [{"type": "Strip", "start": 1}]}`, "decoder.decoders[0].content"},
		{"decoder field type", `"decoder": {"type": "ByteLevel"}`, `"decoder": {"type": 3}`, "decoder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := strings.Replace(tinyJSON, tt.old, tt.new, 1)
			if data == tinyJSON {
				t.Fatalf("case does not change the input (%q not found)", tt.old)
			}
			_, err := ParseHF([]byte(data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestLoad_Errors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.bin")
	if err := os.WriteFile(garbage, []byte{1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	badGz := filepath.Join(dir, "tokenizer.json.gz")
	if err := os.WriteFile(badGz, []byte{0x1f, 0x8b, 0, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "nope.json"), "no such file"},
		{"empty folder", t.TempDir(), "no tokenizer.json"},
		{"not a tokenizer", garbage, "neither JSON nor a llama2.c tokenizer"},
		{"bad gzip", badGz, "gunzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// FuzzParseHF checks that no input makes ParseHF panic.
func FuzzParseHF(f *testing.F) {
	f.Add([]byte(tinyJSON))
	f.Add([]byte(`{"model": {"vocab": {"a": 1e3}, "merges": [[]]}}`))
	f.Add([]byte(`{"model": {"vocab": {"\u00e9\"": 0}, "merges": ["\" \""]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ParseHF(data)
		if err == nil {
			tok.Decode(tok.EncodeWith("ab <x> é", EncodeOptions{ParseSpecial: true}))
		}
	})
}
