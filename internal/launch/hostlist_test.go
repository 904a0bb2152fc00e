package launch

import (
	"slices"
	"strings"
	"testing"
)

// The cases agree with scontrol show hostnames of Slurm 22.05.8 (checked
// on a local two-node cluster, tools/ci/slurm-local.sh).
func TestExpandHostlist(t *testing.T) {
	cases := []struct {
		list string
		want []string
	}{
		{"n1", []string{"n1"}},
		{"n[1-3,5]", []string{"n1", "n2", "n3", "n5"}},
		{"a1,b[01-02]", []string{"a1", "b01", "b02"}},
		{"n[8-10]", []string{"n8", "n9", "n10"}},
		{"n[08-10]", []string{"n08", "n09", "n10"}},
		{"gpu[001-002,010]", []string{"gpu001", "gpu002", "gpu010"}},
		{"n[1-2],m[3,4],x", []string{"n1", "n2", "m3", "m4", "x"}},
		{"r[1-2]n[1-2]", []string{"r1n1", "r1n2", "r2n1", "r2n2"}},
		{"rack[1-2]-n[1-2]", []string{"rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"}},
		{"n[1-2]x[1]", []string{"n1x1", "n2x1"}},
		{"a-[1-2]", []string{"a-1", "a-2"}},
		{"n[01-2]", []string{"n01", "n02"}},
		{"n[1-02]", []string{"n1", "n2"}},
		{"n[001-3]", []string{"n001", "n002", "n003"}},
		{"n1,,n2", []string{"n1", "n2"}},
		{"[1-2]", []string{"1", "2"}},
		{"n[0]", []string{"n0"}},
		{"node-1.cluster,node-2.cluster", []string{"node-1.cluster", "node-2.cluster"}},
		{"n[2,1,2]", []string{"n2", "n1", "n2"}},
	}
	for _, tc := range cases {
		got, err := ExpandHostlist(tc.list)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, %v; want %q", tc.list, got, err, tc.want)
		}
	}
}

func TestExpandHostlist_Errors(t *testing.T) {
	cases := []struct{ list, want string }{
		{"", "no hosts"},
		{",", "no hosts"},
		{"n[1-2]-ib", `text "-ib" after the last ']'`},
		{"n[1-2]x", `text "x" after the last ']'`},
		{"n[1-2],x[3]y", `text "y" after the last ']'`},
		{"n[1-2,]", `range ""`},
		{"n[1-3", "'[' without ']'"},
		{"n1-3]", "']' without '['"},
		{"n[[1]]", "nested '['"},
		{"n[]", "empty '[]'"},
		{"n[5-3]", `range "5-3": 3 is below 5`},
		{"n[a-b]", `range "a-b": want a number or lo-hi`},
		{"n[1-]", `range "1-": want a number or lo-hi`},
		{"n[-1]", `range "-1": want a number or lo-hi`},
		{"n[1-2-3]", `range "1-2-3"`},
		{"n[0-999999999]", "expands to more than 65536 hosts"},
		{"a[0-999]b[0-999]", "expands to more than 65536 hosts"},
	}
	for _, tc := range cases {
		_, err := ExpandHostlist(tc.list)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `launch: host list "`+tc.list+`"`) {
			t.Errorf("%q: got %v, want an error containing %q", tc.list, err, tc.want)
		}
	}
}
