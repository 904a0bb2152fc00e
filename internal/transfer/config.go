package transfer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"
)

// Config is shared by publishers and clients of one run.
type Config struct {
	// Token is the per-run secret: every request carries it as
	// "Authorization: Bearer <Token>" and the publisher refuses any other
	// with 401. At least 16 bytes. Secret's String hides it.
	Token Secret
	// Checksum is the payload checksum a publisher sends: "crc32c" (the
	// default: about 10 GB/s here, see docs/TRANSFER.md) or "sha256".
	// Clients verify whichever algorithm the response names.
	Checksum string
	// ShmDir is the same-host shortcut's folder; "" turns the shortcut
	// off. A publisher writes its snapshots there when the folder exists
	// (else it keeps them in memory); a client on the same host reads the
	// file named in the response instead of the stream.
	ShmDir string
	// HostID names this machine for the shortcut: peers with equal ids
	// may share ShmDir files. "" means LocalHostID().
	HostID string
	// MaxBytes bounds the payload a client accepts.
	MaxBytes int64
	// Timeout bounds one whole fetch, connection to last byte.
	Timeout time.Duration
	// DialTimeout bounds the TCP connect; HeaderTimeout the wait for the
	// response headers (a publisher that accepts and then hangs).
	DialTimeout, HeaderTimeout time.Duration
	// Logger receives refusals and publishes; nil is silent. The token is
	// never logged.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultShmDir   = "/dev/shm"
	DefaultMaxBytes = 64 << 30
	minTokenLen     = 16
)

// DefaultConfig returns the defaults; Token must still be set.
func DefaultConfig() Config {
	return Config{
		Checksum:      CRC32C,
		ShmDir:        DefaultShmDir,
		MaxBytes:      DefaultMaxBytes,
		Timeout:       10 * time.Minute,
		DialTimeout:   10 * time.Second,
		HeaderTimeout: 30 * time.Second,
	}
}

// Validate checks every field and reports all problems at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Token) < minTokenLen {
		errs = append(errs, fmt.Errorf("transfer: token has %d bytes, want at least %d", len(c.Token), minTokenLen))
	}
	if strings.ContainsAny(string(c.Token), " \t\r\n") {
		errs = append(errs, errors.New("transfer: token must not contain white space"))
	}
	if _, err := newHash(c.Checksum); err != nil {
		errs = append(errs, fmt.Errorf("transfer: %w", err))
	}
	if c.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("transfer: max bytes %d must be positive", c.MaxBytes))
	}
	if c.Timeout <= 0 || c.DialTimeout <= 0 || c.HeaderTimeout <= 0 {
		errs = append(errs, fmt.Errorf("transfer: timeouts must be positive (timeout %v, dial %v, header %v)", c.Timeout, c.DialTimeout, c.HeaderTimeout))
	}
	return errors.Join(errs...)
}

// shmUsable reports whether ShmDir is set and is an existing folder.
func (c Config) shmUsable() bool {
	if c.ShmDir == "" {
		return false
	}
	st, err := os.Stat(c.ShmDir)
	return err == nil && st.IsDir()
}

// Secret is a credential: fmt and slog print it as "[redacted]", so a
// Config can be logged whole.
type Secret string

// String hides the value.
func (Secret) String() string { return "[redacted]" }

// GoString hides the value from %#v.
func (Secret) GoString() string { return `"[redacted]"` }

// LogValue hides the value from slog.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// namePattern is what a snapshot may be called: it appears in URLs and
// file names.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// checkName rejects names that are not namePattern.
func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("name %q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}
