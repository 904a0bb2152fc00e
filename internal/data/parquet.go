package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"
)

// readParquet reads every row of a Parquet file (as the Hugging Face Hub
// stores datasets) into records. Each row is reconstructed generically
// (strings, numbers, lists, structs) and re-encoded as JSON, so that the
// rest of the pipeline sees the same values a JSONL export would hold.
// Rows that do not convert are skipped with their row number.
func readParquet(path string) (recs []Record, rep *Report, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	// The library panics on some malformed files; a bad file is user input.
	defer func() {
		if r := recover(); r != nil {
			recs, rep, err = nil, nil, fmt.Errorf("data: %s: malformed parquet file: %v", path, r)
		}
	}()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("data: %s: %w", path, err)
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	rep = &Report{Name: path}
	for row := 1; ; row++ {
		m := map[string]any{}
		err := r.Read(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		pos := Position{File: path, Line: row, Unit: "row"}
		if err != nil {
			return nil, nil, fmt.Errorf("data: %s: %w", pos, err)
		}
		rep.Total++
		rec, err := recordOf(pos, m)
		if err != nil {
			rep.Skip(pos, "value not representable as JSON")
			continue
		}
		recs = append(recs, rec)
	}
	return recs, rep, nil
}

// recordOf re-encodes each top-level value as JSON.
func recordOf(pos Position, m map[string]any) (Record, error) {
	fields := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		b, err := json.Marshal(jsonable(v))
		if err != nil {
			return Record{}, err
		}
		fields[k] = b
	}
	return Record{Pos: pos, Fields: fields}, nil
}

// jsonable turns byte slices (Parquet BYTE_ARRAY without a string
// annotation) into strings, recursively, so they marshal as text rather
// than base64.
func jsonable(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	}
	return v
}
