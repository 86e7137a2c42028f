package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The profiles' handler serves Go's profile index and nothing else.
func TestPprofHandler(t *testing.T) {
	srv := httptest.NewServer(pprofHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	body.Write(buf[:n])
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(body.String(), "goroutine") {
		t.Fatalf("/debug/pprof/: %d %q", resp.StatusCode, body.String())
	}
	if resp, err := http.Get(srv.URL + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("/metrics on the profiles' address: %v %v", resp, err)
	}
}
