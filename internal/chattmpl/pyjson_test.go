package chattmpl

import (
	"math"
	"strings"
	"testing"

	"github.com/ardanlabs/jinja"
)

// Expected strings are Python 3.11 json.dumps / repr outputs.
func TestPyFloatJSON(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {1, "1.0"}, {0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"},
		{2.5e-5, "2.5e-05"}, {1e-4, "0.0001"}, {9.999e-5, "9.999e-05"}, {1e15, "1000000000000000.0"},
		{1e16, "1e+16"}, {1.2345678901234567e16, "1.2345678901234568e+16"}, {123456789012345.6, "123456789012345.6"},
		{5e-324, "5e-324"}, {math.MaxFloat64, "1.7976931348623157e+308"}, {-2.5, "-2.5"}, {100, "100.0"},
		{12345678.9, "12345678.9"}, {math.NaN(), "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"},
	}
	for _, tc := range tests {
		if got := pyFloatJSON(tc.f); got != tc.want {
			t.Errorf("pyFloatJSON(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func mustJSON(t *testing.T, raw string) jinja.Value {
	t.Helper()
	v, err := decodeJSONValue([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPyJSONFilter(t *testing.T) {
	nested := `{"a": [1, {"b": []}], "c": {}}`
	tests := []struct {
		name string
		in   string
		pos  []jinja.Value
		kw   map[string]jinja.Value
		want string
	}{
		{"defaults", nested, nil, nil, `{"a": [1, {"b": []}], "c": {}}`},
		{"indent 0 still breaks lines", nested, nil, map[string]jinja.Value{"indent": jinja.NewInt(0)}, "{\n\"a\": [\n1,\n{\n\"b\": []\n}\n],\n\"c\": {}\n}"},
		{"indent string", `[1, [2]]`, nil, map[string]jinja.Value{"indent": jinja.NewString(" -")}, "[\n -1,\n -[\n - -2\n -]\n]"},
		{"positional indent", `[1]`, []jinja.Value{jinja.NewBool(false), jinja.NewInt(1)}, nil, "[\n 1\n]"},
		{"ensure_ascii", `"\u00e9\ud83d\ude42\u007f\u001f\ud7ff"`, nil, map[string]jinja.Value{"ensure_ascii": jinja.NewBool(true)}, `"\u00e9\ud83d\ude42\u007f\u001f\ud7ff"`},
		{"raw unicode by default", `"\u00e9\ud83d\ude42\u007f\u2029"`, nil, nil, "\"é🙂\x7f\u2029\""},
		{"sort_keys", `{"b": 1, "a": {"d": 1, "c": 2}}`, nil, map[string]jinja.Value{"sort_keys": jinja.NewBool(true)}, `{"a": {"c": 2, "d": 1}, "b": 1}`},
		{"html not escaped", `"<a href='x'>&</a>"`, nil, nil, `"<a href='x'>&</a>"`},
		{"none and bools", `[null, true, false]`, nil, nil, `[null, true, false]`},
		{"big int stays int", `[9007199254740993, -12]`, nil, nil, `[9007199254740993, -12]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]jinja.Value{mustJSON(t, tc.in)}, tc.pos...)
			got, err := pyJSONFilter(args, tc.kw)
			if err != nil {
				t.Fatal(err)
			}
			if got.AsString() != tc.want {
				t.Fatalf("got  %q\nwant %q", got.AsString(), tc.want)
			}
		})
	}
}

func TestPyJSONFilter_errors(t *testing.T) {
	one := []jinja.Value{jinja.NewInt(1)}
	tests := []struct {
		name string
		args []jinja.Value
		kw   map[string]jinja.Value
		want string
	}{
		{"no value", nil, nil, "missing value"},
		{"undefined", []jinja.Value{jinja.Undefined()}, nil, "Undefined is not JSON serializable"},
		{"unknown kwarg", one, map[string]jinja.Value{"indnt": jinja.NewInt(2)}, `unexpected keyword argument "indnt"`},
		{"duplicate", append(one, jinja.NewBool(true)), map[string]jinja.Value{"ensure_ascii": jinja.NewBool(true)}, "multiple values"},
		{"too many", append(one, one[0], one[0], one[0], one[0], one[0]), nil, "at most 4"},
		{"bad separators", one, map[string]jinja.Value{"separators": jinja.NewString(",")}, "separators must be a pair"},
		{"bad indent", one, map[string]jinja.Value{"indent": jinja.NewFloat(2)}, "indent must be an int or a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pyJSONFilter(tc.args, tc.kw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDecodeJSONValue(t *testing.T) {
	v := mustJSON(t, `{"z": 1, "a": 2.0, "z": 3, "n": null, "big": 1e400}`)
	d := v.AsDict()
	if got := strings.Join(d.OrderedKeys(), ","); got != "z,a,n,big" {
		t.Fatalf("key order %s", got)
	}
	if z, _ := d.Get("z"); !z.IsInt() || z.AsInt() != 3 {
		t.Fatalf("repeated key keeps the last value, got %v", z)
	}
	if a, _ := d.Get("a"); !a.IsFloat() {
		t.Fatalf("2.0 must stay a float, got %v", a)
	}
	if big, _ := d.Get("big"); !big.IsFloat() || !math.IsInf(big.AsFloat(), 1) {
		t.Fatalf("1e400 = %v", big)
	}
	for _, bad := range []string{``, `{`, `[1,]`, `{"a" 1}`, `1 2`} {
		if _, err := decodeJSONValue([]byte(bad)); err == nil {
			t.Errorf("decodeJSONValue(%q): want error", bad)
		}
	}
}
