package httpauth

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestToken covers the header forms RFC 7235 allows and the ones it does
// not.
func TestToken(t *testing.T) {
	for _, c := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer k3y", "k3y", true},
		{"bearer k3y", "k3y", true},
		{"BEARER k3y", "k3y", true},
		{"Bearer   k3y", "k3y", true},
		{"Bearer\tk3y", "k3y", true},
		{"Bearer k3y ", "k3y", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearerk3y", "", false},
		{"Basic k3y", "", false},
		{"k3y", "", false},
		{"", "", false},
	} {
		token, ok := Token(c.header)
		if token != c.token || ok != c.ok {
			t.Errorf("Token(%q) = %q, %v; want %q, %v", c.header, token, ok, c.token, c.ok)
		}
	}
}

// TestValid checks a real request through a loopback server: the key in
// any scheme case passes, a wrong or missing one does not, and an empty
// key lets everything through.
func TestValid(t *testing.T) {
	key := "s3cret"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Valid(r, key) {
			Challenge(w)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, c := range []struct {
		header string
		status int
	}{
		{"Bearer s3cret", 204}, {"bearer s3cret", 204}, {"BeArEr  s3cret", 204},
		{"Bearer S3CRET", 401}, {"Bearer s3cre", 401}, {"Basic s3cret", 401}, {"", 401},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("Authorization %q: HTTP %d, want %d", c.header, resp.StatusCode, c.status)
		}
		if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: 401 without WWW-Authenticate", c.header)
		}
	}
	if !Valid(httptest.NewRequest(http.MethodGet, "/", nil), "") {
		t.Error("an empty key must accept every request")
	}
}
