package remote

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"
)

// DefaultMaxMessageBytes bounds one request or reply. Role messages are
// token ids and per-token values (a 512 × 1024-token PPO step is ~8 MB);
// weights never travel in them (see WeightsPlane).
const DefaultMaxMessageBytes = 256 << 20

// minSecretLen is the shortest run secret accepted (NewSecret makes 64
// hex characters).
const minSecretLen = 16

// ServerConfig configures a worker's Server.
type ServerConfig struct {
	// Addr is the host:port to listen on, as the launcher says; port 0
	// picks a free one (see Server.Addr). The host is required: listening
	// on every interface must be asked for by name (0.0.0.0 or [::]).
	Addr string
	// Secret is the run's shared secret (≥ 16 characters, see NewSecret).
	// A call without it is refused; it is never logged.
	Secret Secret
	// Version is this build's gorlhf version; ConfigDigest identifies the
	// run's configuration. A driver with a different value of either is
	// refused with both named.
	Version, ConfigDigest string
	// Rank and Host identify the worker in Info and in the driver's
	// errors; Host "" means the machine's host name.
	Rank int
	Host string
	// MaxMessageBytes bounds a request body; 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// Weights moves parameter tensors for Actor.Weights (publish) and
	// Rollout.LoadWeights (fetch); nil makes those two calls fail.
	Weights WeightsPlane
	// Logger records refused and failed calls (never the secret); nil
	// means slog.Default().
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c ServerConfig) Validate() error {
	var errs []error
	if err := checkListenAddr(c.Addr); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, checkSecret(c.Secret), checkVersion(c.Version))
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("remote: max message bytes %d must be ≥ 0", c.MaxMessageBytes))
	}
	return errors.Join(errs...)
}

// checkListenAddr requires host:port with a host, so that a server
// never listens wider than it was told to.
func checkListenAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("remote: listen address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("remote: listen address %q has no host: name the interface (127.0.0.1 for this machine only, 0.0.0.0 for all)", addr)
	}
	return nil
}

func checkSecret(s Secret) error {
	if len(s) < minSecretLen {
		return fmt.Errorf("remote: the run secret must have at least %d characters (see NewSecret)", minSecretLen)
	}
	return nil
}

func checkVersion(v string) error {
	if v == "" {
		return errors.New("remote: the gorlhf version must be set")
	}
	return nil
}

// Config configures a driver's connection to one worker.
type Config struct {
	// Addr is the worker's host:port.
	Addr string
	// Roles are the roles the driver expects the worker to host: Dial
	// fails if one is missing, and errors name them.
	Roles []Role
	// Secret, Version and ConfigDigest must equal the worker's (see
	// ServerConfig).
	Secret                Secret
	Version, ConfigDigest string
	// DialTimeout bounds how long Dial keeps trying to reach the worker
	// (it may still be starting); default 60 s.
	DialTimeout time.Duration
	// DialBackoff is the first wait between attempts; it doubles up to
	// MaxDialBackoff. Defaults 100 ms and 5 s.
	DialBackoff, MaxDialBackoff time.Duration
	// CallTimeout bounds one call, connection to last byte; default
	// 10 min. MethodTimeouts overrides it per method name ("TrainStep",
	// "Generate", …; see Methods); the defaults give training steps,
	// generation, checkpoints and weight transfers 2 h.
	CallTimeout    time.Duration
	MethodTimeouts map[string]time.Duration
	// MaxMessageBytes bounds a reply body; 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// Weights moves parameter tensors (see ServerConfig.Weights); nil
	// makes Actor.Weights and Rollout.LoadWeights fail.
	Weights WeightsPlane
	// Logger records dial attempts at debug level; nil means
	// slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the timeouts and back-off described on Config;
// the caller sets the address, roles, secret, version and digest.
func DefaultConfig() Config {
	long := 2 * time.Hour
	return Config{
		DialTimeout: time.Minute, DialBackoff: 100 * time.Millisecond, MaxDialBackoff: 5 * time.Second,
		CallTimeout: 10 * time.Minute,
		MethodTimeouts: map[string]time.Duration{
			"TrainStep": long, "Generate": long, "Save": long, "Load": long, "Export": long,
			"Weights": long, "LoadWeights": long,
		},
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("remote: worker address %q: %w", c.Addr, err))
	}
	for _, r := range c.Roles {
		if !slices.Contains(allRoles, r) {
			errs = append(errs, fmt.Errorf("remote: unknown role %q", r))
		}
	}
	errs = append(errs, checkSecret(c.Secret), checkVersion(c.Version))
	if c.DialTimeout <= 0 || c.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("remote: dial timeout %v and call timeout %v must be positive", c.DialTimeout, c.CallTimeout))
	}
	if c.DialBackoff <= 0 || c.MaxDialBackoff < c.DialBackoff {
		errs = append(errs, fmt.Errorf("remote: dial back-off %v, max %v: want 0 < back-off ≤ max", c.DialBackoff, c.MaxDialBackoff))
	}
	for name, d := range c.MethodTimeouts {
		if !slices.Contains(Methods(), name) {
			errs = append(errs, fmt.Errorf("remote: timeout for unknown method %q", name))
		} else if d <= 0 {
			errs = append(errs, fmt.Errorf("remote: timeout %v for %s must be positive", d, name))
		}
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("remote: max message bytes %d must be ≥ 0", c.MaxMessageBytes))
	}
	return errors.Join(errs...)
}

// timeout is the limit of one call to method.
func (c Config) timeout(method string) time.Duration {
	if d, ok := c.MethodTimeouts[method]; ok {
		return d
	}
	return c.CallTimeout
}

// Secret is a run's shared secret. It prints, formats and logs as
// "[redacted]", so a Config that reaches a log or an error message does
// not carry it; string(s) is the value.
type Secret string

const redacted = "[redacted]"

// String, GoString, LogValue and Format all write "[redacted]".
func (Secret) String() string             { return redacted }
func (Secret) GoString() string           { return redacted }
func (Secret) LogValue() slog.Value       { return slog.StringValue(redacted) }
func (Secret) Format(f fmt.State, _ rune) { f.Write([]byte(redacted)) }

// NewSecret returns a fresh random run secret (32 bytes, hex): the
// driver makes one per run and the launcher hands it to the workers.
func NewSecret() (Secret, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("remote: new secret: %w", err)
	}
	return Secret(hex.EncodeToString(b[:])), nil
}

// maxBytes resolves a MaxMessageBytes setting.
func maxBytes(n int64) int64 {
	if n == 0 {
		return DefaultMaxMessageBytes
	}
	return n
}

// logger resolves a Logger setting.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
