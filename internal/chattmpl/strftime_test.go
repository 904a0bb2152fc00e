package chattmpl

import (
	"testing"
	"time"
)

// Expected strings are glibc strftime outputs (Python datetime.strftime).
func TestStrftime(t *testing.T) {
	mid := time.Date(2024, 2, 29, 0, 7, 9, 123456000, time.UTC)
	tests := []struct {
		t    time.Time
		fmt  string
		want string
	}{
		{mid, "%d %b %Y", "29 Feb 2024"},
		{mid, "%I:%M:%S %p", "12:07:09 AM"},
		{mid, "%-I %-M %-d %-m %-j", "12 7 29 2 60"},
		{mid, "%e|%j|%f|%u|%w", "29|060|123456|4|4"},
		{mid, "%c", "Thu Feb 29 00:07:09 2024"},
		{time.Date(2024, 1, 5, 13, 0, 0, 0, time.UTC), "%e %I %p %U %W", " 5 01 PM 00 01"},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "%G-W%V-%u %g", "2026-W53-5 26"},
		{mid, "100%% %q %", "100% %q %"},
		{mid, "%Z %z", "UTC +0000"},
	}
	for _, tc := range tests {
		if got := strftime(tc.t, tc.fmt); got != tc.want {
			t.Errorf("strftime(%v, %q) = %q, want %q", tc.t, tc.fmt, got, tc.want)
		}
	}
}
