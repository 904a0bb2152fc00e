package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Record is one dataset row: each field's raw JSON value, and where the row
// came from.
type Record struct {
	Pos    Position
	Fields map[string]json.RawMessage
}

// ReadFiles reads the comma-separated dataset files of spec (OpenRLHF's
// --data.dataset "a.jsonl,b.parquet"), in order, keeping at most
// maxSamples records in all (≤ 0: no limit).
func ReadFiles(spec string, maxSamples int) ([]Record, *Report, error) {
	rep := &Report{Name: spec}
	var out []Record
	for _, path := range strings.Split(spec, ",") {
		path = strings.TrimSpace(path)
		if path == "" {
			continue
		}
		recs, r, err := ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		rep.Merge(r)
		out = append(out, recs...)
		if maxSamples > 0 && len(out) >= maxSamples {
			out = out[:maxSamples]
			break
		}
	}
	if len(out) == 0 {
		return nil, rep, rep.Err()
	}
	return out, rep, nil
}

// ReadFile reads every record of one dataset file. The format comes from
// the name: .parquet, .json (one JSON array of objects) or JSON Lines
// (.jsonl and anything else); any of the text formats may be gzipped
// (detected by its magic bytes, whatever the name). Lines that are not a
// JSON object are skipped and counted in the report with their line
// number; I/O errors and an unreadable file are returned as errors.
func ReadFile(path string) ([]Record, *Report, error) {
	name := strings.ToLower(strings.TrimSuffix(path, ".gz"))
	if filepath.Ext(name) == ".parquet" {
		return readParquet(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	r, err := maybeGunzip(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return nil, nil, fmt.Errorf("data: %s: %w", path, err)
	}
	if err := skipBOM(r); err != nil {
		return nil, nil, fmt.Errorf("data: %s: %w", path, err)
	}
	if filepath.Ext(name) == ".json" {
		return readJSONArray(path, r)
	}
	return readJSONL(path, r)
}

// utf8BOM is the byte order mark some editors put at the start of a
// UTF-8 file; JSON has no use for it.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// skipBOM drops a UTF-8 byte order mark at the start of r, which would
// otherwise make the first line invalid JSON (and be skipped).
func skipBOM(r *bufio.Reader) error {
	b, err := r.Peek(len(utf8BOM))
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if bytes.Equal(b, utf8BOM) {
		_, err = r.Discard(len(utf8BOM))
		return err
	}
	return nil
}

// maybeGunzip returns a reader of the decompressed stream when br starts
// with the gzip magic bytes, else br itself.
func maybeGunzip(br *bufio.Reader) (*bufio.Reader, error) {
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		return bufio.NewReaderSize(zr, 1<<16), nil
	}
	return br, nil
}

// readJSONL reads one JSON object per line; blank lines are ignored.
func readJSONL(path string, br *bufio.Reader) ([]Record, *Report, error) {
	rep := &Report{Name: path}
	var out []Record
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			rep.Total++
			pos := Position{File: path, Line: line}
			if rec, reason := parseObject(pos, b); reason != "" {
				rep.Skip(pos, reason)
			} else {
				out = append(out, rec)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("data: %s:%d: %w", path, line, err)
		}
	}
	return out, rep, nil
}

// readJSONArray reads a file holding one JSON array of objects (and
// nothing after it).
func readJSONArray(path string, r io.Reader) ([]Record, *Report, error) {
	var elems []json.RawMessage
	dec := json.NewDecoder(r)
	if err := dec.Decode(&elems); err != nil {
		return nil, nil, fmt.Errorf("data: %s: want a JSON array of objects: %w", path, err)
	}
	var syn *json.SyntaxError
	switch _, err := dec.Token(); {
	case errors.Is(err, io.EOF):
	case err == nil || errors.As(err, &syn):
		return nil, nil, fmt.Errorf("data: %s: trailing data after the JSON array", path)
	default:
		return nil, nil, fmt.Errorf("data: %s: %w", path, err)
	}
	rep := &Report{Name: path}
	out := make([]Record, 0, len(elems))
	for i, e := range elems {
		rep.Total++
		pos := Position{File: path, Line: i + 1, Unit: "element"}
		if rec, reason := parseObject(pos, e); reason != "" {
			rep.Skip(pos, reason)
		} else {
			out = append(out, rec)
		}
	}
	return out, rep, nil
}

// parseObject decodes one JSON object; a non-empty reason means it is not one.
func parseObject(pos Position, b []byte) (Record, string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return Record{}, "not a JSON object"
		}
		return Record{}, "invalid JSON"
	}
	if fields == nil {
		return Record{}, "not a JSON object"
	}
	return Record{Pos: pos, Fields: fields}, ""
}
