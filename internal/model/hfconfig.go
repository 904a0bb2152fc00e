package model

import "fmt"

// HFSize returns *p, or an error naming the config.json field that is
// missing or not positive. Sizes have Hugging Face defaults (those of a
// 7B model), but a config.json without them is broken, not a 7B model.
func HFSize(p *int, field string) (int, error) {
	if p == nil {
		return 0, fmt.Errorf("%s is missing", field)
	}
	if *p <= 0 {
		return 0, fmt.Errorf("%s = %d, want > 0", field, *p)
	}
	return *p, nil
}

// HFOr returns *p, or def when the config.json field is absent or null.
func HFOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
