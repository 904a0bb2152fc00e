package httpjson

import (
	"encoding/json"
	"errors"
	"io"
)

// ErrTrailingData is returned by DecodeOne when more than white space
// follows the JSON value.
var ErrTrailingData = errors.New("trailing data after the JSON value")

// DecodeOne decodes exactly one JSON value from r into v: what follows it
// must be white space, as Python's json.loads and Go's json.Unmarshal
// require, so a request body with garbage (or a second object) after its
// JSON is refused instead of half-read. The servers decode their request
// bodies with it. Read errors (such as http.MaxBytesError) come back as
// they are.
func DecodeOne(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return err
	}
	_, err := dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return ErrTrailingData
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return ErrTrailingData
	}
	return err
}
