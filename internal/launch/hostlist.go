package launch

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxHosts bounds what one host list may expand to, so a typo such as
// n[0-999999999] is an error rather than a giant allocation.
const maxHosts = 1 << 16

// ExpandHostlist expands a Slurm host list into host names, in order:
//
//	n[1-3,5]        n1 n2 n3 n5
//	a1,b[01-02]     a1 b01 b02        (a range keeps its lower bound's width)
//	r[1-2]-n[1-2]   r1-n1 r1-n2 r2-n1 r2-n2
//
// Commas inside brackets separate ranges, outside them hosts. As in
// Slurm 22.05's scontrol show hostnames: empty hosts between commas are
// skipped, duplicates kept, and text after a host's last bracket group
// (n[1-2]-ib) is an error.
func ExpandHostlist(list string) ([]string, error) {
	hosts, err := expandHostlist(list)
	if err != nil {
		return nil, fmt.Errorf("launch: host list %q: %w", list, err)
	}
	return hosts, nil
}

func expandHostlist(list string) ([]string, error) {
	items, err := splitTop(list)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, item := range items {
		h, err := expandItem(item, maxHosts-len(hosts))
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h...)
	}
	return hosts, nil
}

// splitTop splits at the commas outside brackets and checks that brackets
// pair up without nesting.
func splitTop(list string) ([]string, error) {
	var items []string
	depth, start := 0, 0
	for i, r := range list {
		switch r {
		case '[':
			if depth > 0 {
				return nil, errors.New("nested '['")
			}
			depth++
		case ']':
			if depth == 0 {
				return nil, errors.New("']' without '['")
			}
			depth--
		case ',':
			if depth == 0 {
				items = append(items, list[start:i])
				start = i + 1
			}
		}
	}
	if depth > 0 {
		return nil, errors.New("'[' without ']'")
	}
	items = append(items, list[start:])
	items = slices.DeleteFunc(items, func(it string) bool { return strings.TrimSpace(it) == "" })
	if len(items) == 0 {
		return nil, errors.New("no hosts")
	}
	return items, nil
}

// expandItem expands one host pattern: literal text and bracket groups,
// every combination of the groups' values (leftmost group slowest), at
// most limit names.
func expandItem(item string, limit int) ([]string, error) {
	out := []string{""}
	for bracket := false; item != ""; bracket = true {
		open := strings.IndexByte(item, '[')
		if open < 0 && bracket {
			return nil, fmt.Errorf("text %q after the last ']'", item)
		}
		if open < 0 {
			out = appendAll(out, []string{item})
			break
		}
		closing := strings.IndexByte(item, ']') // splitTop guarantees it follows open
		vals, err := expandRanges(item[open+1 : closing])
		if err != nil {
			return nil, err
		}
		if len(out)*len(vals) > limit {
			return nil, fmt.Errorf("expands to more than %d hosts", maxHosts)
		}
		out = appendAll(out, []string{item[:open]})
		out = appendAll(out, vals)
		item = item[closing+1:]
	}
	return out, nil
}

// appendAll returns every prefix followed by every suffix.
func appendAll(prefixes, suffixes []string) []string {
	out := make([]string, 0, len(prefixes)*len(suffixes))
	for _, p := range prefixes {
		for _, s := range suffixes {
			out = append(out, p+s)
		}
	}
	return out
}

// expandRanges expands the inside of a bracket: "1-3,5", "01-02".
func expandRanges(spec string) ([]string, error) {
	if spec == "" {
		return nil, errors.New("empty '[]'")
	}
	var vals []string
	for r := range strings.SplitSeq(spec, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		if !isRange {
			hi = lo
		}
		a, errA := parseIndex(lo)
		b, errB := parseIndex(hi)
		if errA != nil || errB != nil {
			return nil, fmt.Errorf("range %q: want a number or lo-hi", r)
		}
		if b < a {
			return nil, fmt.Errorf("range %q: %d is below %d", r, b, a)
		}
		if b-a >= maxHosts-len(vals) {
			return nil, fmt.Errorf("expands to more than %d hosts", maxHosts)
		}
		for n := a; n <= b; n++ {
			vals = append(vals, fmt.Sprintf("%0*d", len(lo), n))
		}
	}
	return vals, nil
}

// parseIndex parses a non-negative decimal index (digits only).
func parseIndex(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" || len(s) > 9 {
		return 0, errors.New("not an index")
	}
	return strconv.Atoi(s)
}
