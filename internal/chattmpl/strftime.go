package chattmpl

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// strftime formats t like Python's datetime.strftime on glibc, which is what
// strftime_now in HF chat templates calls (e.g. Llama 3.x writes
// "Today Date: {{ strftime_now('%d %b %Y') }}"). The engine's own
// strftime_now reads the wall clock and knows only a few directives, so the
// package supplies this one with an injectable clock. Supported: the C89
// directives plus %e %C %D %F %R %T %G %g %V %u %s %n %t %h, and glibc's
// "-" (no padding) flag as in %-d. Unknown directives are copied through.
func strftime(t time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 >= len(format) {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		noPad := false
		if format[j] == '-' && j+1 < len(format) {
			noPad = true
			j++
		}
		if !writeDirective(&b, t, format[j], noPad) {
			b.WriteString(format[i : j+1])
		}
		i = j
	}
	return b.String()
}

// num writes n zero-padded to width unless noPad.
func num(b *strings.Builder, n, width int, noPad bool) {
	if noPad {
		b.WriteString(strconv.Itoa(n))
		return
	}
	fmt.Fprintf(b, "%0*d", width, n)
}

func hour12(t time.Time) int {
	h := t.Hour() % 12
	if h == 0 {
		h = 12
	}
	return h
}

// writeDirective writes one conversion; false means the directive is unknown.
func writeDirective(b *strings.Builder, t time.Time, d byte, noPad bool) bool {
	if writeDateDirective(b, t, d, noPad) {
		return true
	}
	switch d {
	case 'H':
		num(b, t.Hour(), 2, noPad)
	case 'I':
		num(b, hour12(t), 2, noPad)
	case 'M':
		num(b, t.Minute(), 2, noPad)
	case 'S':
		num(b, t.Second(), 2, noPad)
	case 'f':
		num(b, t.Nanosecond()/1000, 6, noPad)
	case 'p':
		b.WriteString(map[bool]string{true: "PM", false: "AM"}[t.Hour() >= 12])
	case 'Z':
		name, _ := t.Zone()
		b.WriteString(name)
	case 'z':
		b.WriteString(t.Format("-0700"))
	case 's':
		b.WriteString(strconv.FormatInt(t.Unix(), 10))
	case 'c':
		b.WriteString(strftime(t, "%a %b %e %H:%M:%S %Y"))
	case 'x':
		b.WriteString(strftime(t, "%m/%d/%y"))
	case 'X', 'T':
		b.WriteString(strftime(t, "%H:%M:%S"))
	case 'R':
		b.WriteString(strftime(t, "%H:%M"))
	case 'n':
		b.WriteByte('\n')
	case 't':
		b.WriteByte('\t')
	case '%':
		b.WriteByte('%')
	default:
		return false
	}
	return true
}

// writeDateDirective handles the calendar directives.
func writeDateDirective(b *strings.Builder, t time.Time, d byte, noPad bool) bool {
	switch d {
	case 'a':
		b.WriteString(t.Weekday().String()[:3])
	case 'A':
		b.WriteString(t.Weekday().String())
	case 'b', 'h':
		b.WriteString(t.Month().String()[:3])
	case 'B':
		b.WriteString(t.Month().String())
	case 'd':
		num(b, t.Day(), 2, noPad)
	case 'e':
		if noPad {
			num(b, t.Day(), 1, true)
		} else {
			fmt.Fprintf(b, "%2d", t.Day())
		}
	case 'j':
		num(b, t.YearDay(), 3, noPad)
	case 'm':
		num(b, int(t.Month()), 2, noPad)
	case 'y':
		num(b, t.Year()%100, 2, noPad)
	case 'Y':
		b.WriteString(strconv.Itoa(t.Year()))
	case 'C':
		num(b, t.Year()/100, 2, noPad)
	case 'w':
		b.WriteString(strconv.Itoa(int(t.Weekday())))
	case 'u':
		wd := int(t.Weekday())
		if wd == 0 {
			wd = 7
		}
		b.WriteString(strconv.Itoa(wd))
	case 'U':
		num(b, (t.YearDay()+6-int(t.Weekday()))/7, 2, noPad)
	case 'W':
		num(b, (t.YearDay()+6-(int(t.Weekday())+6)%7)/7, 2, noPad)
	case 'G':
		y, _ := t.ISOWeek()
		b.WriteString(strconv.Itoa(y))
	case 'g':
		y, _ := t.ISOWeek()
		num(b, y%100, 2, noPad)
	case 'V':
		_, w := t.ISOWeek()
		num(b, w, 2, noPad)
	case 'D':
		b.WriteString(strftime(t, "%m/%d/%y"))
	case 'F':
		b.WriteString(strftime(t, "%Y-%m-%d"))
	default:
		return false
	}
	return true
}
