package report

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"
)

// EventWriter writes TensorBoard event files: the TFRecord framing
// (length, masked CRC32C of the length, payload, masked CRC32C of the
// payload) around protobuf-encoded tensorflow.Event messages holding
// scalar summaries. The format is small and stable, so it is written by
// hand instead of pulling in a protobuf runtime.
type EventWriter struct {
	f   *os.File
	w   *bufio.Writer
	now func() time.Time
}

// castagnoli is the CRC32C table TFRecord uses.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's masked CRC32C: rotate right by 15, add a constant
// (so that CRCs of data that itself holds CRCs stay well distributed).
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// NewEventWriter creates dir and a new event file in it named as
// TensorBoard expects (events.out.tfevents.<seconds>.<host>), and writes
// the file-version header event. now is the clock (nil: time.Now).
func NewEventWriter(dir string, now func() time.Time) (*EventWriter, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	t := now()
	name := fmt.Sprintf("events.out.tfevents.%d.%s.%d", t.Unix(), host, os.Getpid())
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	for i := 1; errors.Is(err, fs.ErrExist) && i < 100; i++ { // a second writer within the same second
		f, err = os.OpenFile(filepath.Join(dir, fmt.Sprintf("%s.%d", name, i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	w := &EventWriter{f: f, w: bufio.NewWriter(f), now: now}
	if err := w.writeRecord(fileVersionEvent(t)); err != nil {
		f.Close()
		return nil, err
	}
	return w, w.Flush()
}

// Path returns the event file's path.
func (w *EventWriter) Path() string { return w.f.Name() }

// Scalars writes one event at step holding a scalar summary per tag
// (e.g. "train/loss"), in the order given.
func (w *EventWriter) Scalars(step int, tags []string, values []float64) error {
	return w.writeRecord(scalarEvent(w.now(), step, tags, values))
}

// Flush pushes buffered events to the file.
func (w *EventWriter) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("tensorboard: %w", err)
	}
	return nil
}

// Close flushes and closes the file.
func (w *EventWriter) Close() error {
	err := w.Flush()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("tensorboard: %w", cerr)
	}
	return err
}

// writeRecord frames one payload as a TFRecord.
func (w *EventWriter) writeRecord(payload []byte) error {
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(payload)))
	binary.LittleEndian.PutUint32(hdr[8:], maskedCRC(hdr[:8]))
	var foot [4]byte
	binary.LittleEndian.PutUint32(foot[:], maskedCRC(payload))
	for _, b := range [][]byte{hdr[:], payload, foot[:]} {
		if _, err := w.w.Write(b); err != nil {
			return fmt.Errorf("tensorboard: %w", err)
		}
	}
	return nil
}

// Protobuf wire format: a key is field<<3 | wire type.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

func appendKey(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field<<3|wire))
}

func appendBytesField(b []byte, field int, v []byte) []byte {
	b = appendKey(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// eventHeader encodes Event.wall_time (1, double) and Event.step (2, int64).
func eventHeader(t time.Time, step int) []byte {
	b := appendKey(nil, 1, wireFixed64)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(t.Unix())+float64(t.Nanosecond())/1e9))
	if step != 0 {
		b = appendKey(b, 2, wireVarint)
		b = binary.AppendUvarint(b, uint64(int64(step)))
	}
	return b
}

// fileVersionEvent is the first event of every file: file_version (3).
func fileVersionEvent(t time.Time) []byte {
	return appendBytesField(eventHeader(t, 0), 3, []byte("brain.Event:2"))
}

// scalarEvent is an Event whose summary (5) holds one Summary.Value (1)
// per tag, each with tag (1) and simple_value (2, float).
func scalarEvent(t time.Time, step int, tags []string, values []float64) []byte {
	var summary []byte
	for i, tag := range tags {
		v := appendBytesField(nil, 1, []byte(tag))
		v = appendKey(v, 2, wireFixed32)
		v = binary.LittleEndian.AppendUint32(v, math.Float32bits(float32(values[i])))
		summary = appendBytesField(summary, 1, v)
	}
	return appendBytesField(eventHeader(t, step), 5, summary)
}
