package collective

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"unsafe"
)

// What travels on a ring link, for each collective: a 32-byte header
// (so that two ranks in different collectives fail at once instead of
// misreading each other), then the plan's chunks as raw little-endian
// values, no framing. Handshakes are length-prefixed JSON.

// protocolVersion changes whenever anything on the wire does; ranks of
// different versions refuse each other in the handshake.
const protocolVersion = 1

// protocolName opens every handshake message.
const protocolName = "gorlhf-collective"

// littleEndian reports whether this machine stores numbers as the wire
// does; Connect refuses other machines (values go to the socket straight
// from the caller's buffer).
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// elem is a value type the collectives move.
type elem interface{ float32 | float64 }

// elemSize is the bytes of one T.
func elemSize[T elem]() int {
	var z T
	return int(unsafe.Sizeof(z))
}

// asBytes views v's memory as bytes (every bit pattern is a valid float,
// so writing through the view is safe).
func asBytes[T elem](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*elemSize[T]())
}

// viewAs views b (8-byte aligned, as every Go allocation of 8 bytes or
// more is) as values.
func viewAs[T elem](b []byte) []T {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/elemSize[T]())
}

// opKind names a collective on the wire and in errors.
type opKind uint8

const (
	opAllReduce opKind = iota + 1
	opReduceScatter
	opAllGather
	opBroadcast
	opAllReduceF64
	opBarrier
)

func (o opKind) String() string {
	switch o {
	case opAllReduce:
		return "all-reduce"
	case opReduceScatter:
		return "reduce-scatter"
	case opAllGather:
		return "all-gather"
	case opBroadcast:
		return "broadcast"
	case opAllReduceF64:
		return "all-reduce-f64"
	case opBarrier:
		return "barrier"
	}
	return fmt.Sprintf("op %d", uint8(o))
}

// header opens each collective on each link.
type header struct {
	op    opKind
	elem  uint8  // bytes per value
	chunk uint32 // values per chunk
	root  uint32 // broadcast's root, else 0
	seq   uint64 // collectives this Comm ran before this one
	n     uint64 // values in the caller's buffer
}

const headerMagic = 0x6c6f6367 // "gcol" little-endian

func (h header) encode() []byte {
	b := make([]byte, 32)
	binary.LittleEndian.PutUint32(b[0:], headerMagic)
	b[4], b[5] = byte(h.op), h.elem
	binary.LittleEndian.PutUint32(b[8:], h.chunk)
	binary.LittleEndian.PutUint32(b[12:], h.root)
	binary.LittleEndian.PutUint64(b[16:], h.seq)
	binary.LittleEndian.PutUint64(b[24:], h.n)
	return b
}

func decodeHeader(b []byte) (header, error) {
	if binary.LittleEndian.Uint32(b) != headerMagic {
		return header{}, fmt.Errorf("stream out of step: no collective header (got % x)", b[:8])
	}
	return header{op: opKind(b[4]), elem: b[5], chunk: binary.LittleEndian.Uint32(b[8:]),
		root: binary.LittleEndian.Uint32(b[12:]), seq: binary.LittleEndian.Uint64(b[16:]), n: binary.LittleEndian.Uint64(b[24:])}, nil
}

func (h header) String() string {
	s := fmt.Sprintf("%v of %d values", h.op, h.n)
	if h.op == opBroadcast {
		s += fmt.Sprintf(" from rank %d", h.root)
	}
	return s + fmt.Sprintf(" (its collective #%d; %d-byte values, %d per chunk)", h.seq+1, h.elem, h.chunk)
}

// Control messages, on a second connection beside each data link: an
// abort (the group broke; text is the cause) or bye (the rank closed its
// Comm). One byte kind, two bytes length, the text.
const (
	ctrlAbort = 'A'
	ctrlBye   = 'B'
)

func writeCtrl(w io.Writer, kind byte, text string) error {
	if len(text) > 1<<15 {
		text = text[:1<<15]
	}
	b := make([]byte, 3+len(text))
	b[0] = kind
	binary.LittleEndian.PutUint16(b[1:], uint16(len(text)))
	copy(b[3:], text)
	_, err := w.Write(b)
	return err
}

func readCtrl(r io.Reader) (kind byte, text string, err error) {
	var h [3]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, "", err
	}
	b := make([]byte, binary.LittleEndian.Uint16(h[1:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, "", err
	}
	return h[0], string(b), nil
}

// maxMsg bounds a handshake message (a rank table of a few thousand
// addresses fits).
const maxMsg = 1 << 20

// writeMsg writes v as JSON behind its 4-byte little-endian length
// (exact framing: no reader ever buffers bytes past a message).
func writeMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	out := make([]byte, 4+len(b))
	binary.LittleEndian.PutUint32(out, uint32(len(b)))
	copy(out[4:], b)
	_, err = w.Write(out)
	return err
}

func readMsg(r io.Reader, v any) error {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(h[:])
	if n > maxMsg {
		return fmt.Errorf("handshake message of %d bytes (limit %d): not a %s peer", n, maxMsg, protocolName)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("handshake message: %w", err)
	}
	return nil
}

// nonce returns 16 fresh random bytes, hex.
func nonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported systems
	}
	return hex.EncodeToString(b[:])
}

// prove is the HMAC-SHA256 of parts (each length-prefixed) under the run
// secret: proof that the writer knows the secret, bound to the nonces
// and fields of one handshake.
func prove(secret string, parts ...any) string {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		s := fmt.Sprint(p)
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], uint32(len(s)))
		m.Write(l[:])
		m.Write([]byte(s))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// proven compares a proof in constant time.
func proven(got, secret string, parts ...any) bool {
	return hmac.Equal([]byte(got), []byte(prove(secret, parts...)))
}
