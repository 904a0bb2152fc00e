package httpjson

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeOne(t *testing.T) {
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"a": 1}`, true},
		{" {\"a\": 1} \n\t", true},
		{`{"a": 1} xyz`, false},
		{`{"a": 1}}`, false},
		{`{"a": 1}{"a": 2}`, false},
		{`{"a": 1} 3`, false},
		{`{"a": `, false},
	} {
		var v struct{ A int }
		err := DecodeOne(strings.NewReader(c.body), &v)
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v", c.body, err)
		}
		if !c.ok && v.A == 1 && !errors.Is(err, ErrTrailingData) {
			t.Errorf("%q: %v, want ErrTrailingData", c.body, err)
		}
	}
	// A body over the limit is still reported as too big, even when the
	// limit falls after the value.
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"a": 1}`+strings.Repeat(" ", 100)+"x"))
	var v struct{ A int }
	err := DecodeOne(http.MaxBytesReader(rec, r.Body, 20), &v)
	var tooBig *http.MaxBytesError
	if !errors.As(err, &tooBig) {
		t.Errorf("over the limit: %v", err)
	}
}
