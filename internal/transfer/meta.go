package transfer

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Wire headers. A response carries the snapshot's Meta in them; a request
// may ask for the same-host shortcut and for an exact version.
const (
	HeaderVersion  = "Gorlhf-Weights-Version"  // response: the snapshot's version
	HeaderLength   = "Gorlhf-Weights-Length"   // response: the payload's byte length
	HeaderChecksum = "Gorlhf-Weights-Checksum" // response: "crc32c=<hex>" or "sha256=<hex>"
	HeaderPath     = "Gorlhf-Weights-Path"     // response: the shortcut file (body empty)
	HeaderHost     = "Gorlhf-Host"             // request: the client's host id; asks for the shortcut
	HeaderWant     = "Gorlhf-Want-Version"     // request: refuse (409) unless this version is published
	ContentType    = "application/vnd.gorlhf.safetensors"
)

// Latest asks Fetch for whatever version is published (never one older
// than the receiver holds).
const Latest int64 = -1

// Meta describes one published snapshot.
type Meta struct {
	Name     string
	Version  int64
	Size     int64  // payload bytes
	Checksum string // "crc32c=<hex>" or "sha256=<hex>"
	// Path is the shortcut file for a client on the publisher's host;
	// "" when the payload comes in the body.
	Path string
	// Via says how a fetch got the bytes: "http" or "shm".
	Via string
}

// setHeaders writes m into a response's headers.
func (m Meta) setHeaders(h http.Header) {
	h.Set(HeaderVersion, strconv.FormatInt(m.Version, 10))
	h.Set(HeaderLength, strconv.FormatInt(m.Size, 10))
	h.Set(HeaderChecksum, m.Checksum)
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
}

// metaFromHeaders reads and checks a response's Meta (the body length is
// checked by the caller).
func metaFromHeaders(h http.Header, maxBytes int64) (Meta, error) {
	var m Meta
	var err error
	if m.Version, err = headerInt(h, HeaderVersion); err != nil {
		return m, err
	}
	if m.Size, err = headerInt(h, HeaderLength); err != nil {
		return m, err
	}
	if m.Size > maxBytes {
		return m, fmt.Errorf("payload of %d bytes exceeds the %d-byte limit", m.Size, maxBytes)
	}
	m.Checksum = h.Get(HeaderChecksum)
	if _, _, err := parseSum(m.Checksum); err != nil {
		return m, err
	}
	m.Path = h.Get(HeaderPath)
	return m, nil
}

// headerInt parses a non-negative integer header.
func headerInt(h http.Header, key string) (int64, error) {
	raw := h.Get(key)
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("header %s=%q is not a non-negative integer", key, raw)
	}
	return v, nil
}

// URL returns the address of snapshot name on the publisher at base
// ("http://10.0.0.2:7070").
func URL(base, name string) string { return strings.TrimRight(base, "/") + "/weights/" + name }

// redact drops any user information from a URL for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}
