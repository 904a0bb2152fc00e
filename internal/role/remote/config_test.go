package remote

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestConfig_Validate(t *testing.T) {
	ok := clientConfig("127.0.0.1:1", nil, RoleActor)
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, c := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"address", func(c *Config) { c.Addr = "nowhere" }, "worker address"},
		{"role", func(c *Config) { c.Roles = []Role{"judge"} }, `unknown role "judge"`},
		{"secret", func(c *Config) { c.Secret = "short" }, "at least 16 characters"},
		{"version", func(c *Config) { c.Version = "" }, "version must be set"},
		{"dial timeout", func(c *Config) { c.DialTimeout = 0 }, "must be positive"},
		{"back-off", func(c *Config) { c.MaxDialBackoff = time.Millisecond }, "back-off"},
		{"method", func(c *Config) { c.MethodTimeouts = map[string]time.Duration{"Train": time.Second} }, `unknown method "Train"`},
		{"method timeout", func(c *Config) { c.MethodTimeouts = map[string]time.Duration{"TrainStep": 0} }, "TrainStep must be positive"},
	} {
		cfg := ok
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestServerConfig_Validate(t *testing.T) {
	for _, c := range []struct {
		addr   string
		secret Secret
		want   string
	}{
		{"127.0.0.1:0", testSecret, ""},
		{"[::1]:0", testSecret, ""},
		{"0.0.0.0:7000", testSecret, ""},
		{":7000", testSecret, "has no host"},
		{"localhost", testSecret, "listen address"},
		{"127.0.0.1:0", "", "at least 16"},
	} {
		cfg := serverConfig(nil, nil)
		cfg.Addr, cfg.Secret = c.addr, c.secret
		err := cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q: %v, want %q", c.addr, err, c.want)
		}
	}
	if _, err := NewServer(serverConfig(nil, nil), Hosted{}); err == nil || !strings.Contains(err.Error(), "no role") {
		t.Errorf("a server without roles: %v", err)
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if len(a) != 64 || a == b || checkSecret(a) != nil {
		t.Fatalf("secrets %q, %q", a, b)
	}
}

// TestSecret_Redacted checks that printing or logging a configuration
// never shows the secret.
func TestSecret_Redacted(t *testing.T) {
	cfg := clientConfig("127.0.0.1:1", nil, RoleActor)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "secret", cfg.Secret)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "secret", cfg.Secret)
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s %q", cfg, cfg, cfg, cfg.Secret, cfg.Secret),
		fmt.Sprint(serverConfig(nil, nil)),
		logged.String(),
	} {
		if strings.Contains(s, testSecret) || !strings.Contains(s, "[redacted]") {
			t.Errorf("secret shown or not redacted: %s", s)
		}
	}
}

func TestRole_Set(t *testing.T) {
	var r Role
	if err := r.Set("critic"); err != nil || r != RoleCritic {
		t.Fatalf("%q: %v", r, err)
	}
	if err := r.Set("judge"); err == nil || !strings.Contains(err.Error(), "actor, critic, reference, reward, rollout") {
		t.Fatalf("unknown role: %v", err)
	}
}
