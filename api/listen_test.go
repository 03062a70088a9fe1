package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/callcontrol/callcontrol/api"
)

// Validate's refusals are typed and name the field.
func TestListenConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   api.ListenConfig
		field string
	}{
		{api.ListenConfig{Addr: ":8443"}, "Addr"},
		{api.ListenConfig{Addr: "10.0.0.1:8443"}, "Addr"},
		{api.ListenConfig{Addr: "127.0.0.1:0", CertFile: "c.pem"}, "CertFile"},
		{api.ListenConfig{Addr: "127.0.0.1:0", ClientCAFile: "ca.pem"}, "ClientCAFile"},
	} {
		var le *api.ListenError
		if err := c.cfg.Validate(); !errors.As(err, &le) || le.Field != c.field {
			t.Errorf("%+v: %v, want a ListenError on %s", c.cfg, err, c.field)
		}
	}
	if err := (api.ListenConfig{Addr: ":8443"}).Validate(); !errors.Is(err, api.ErrPlainHTTP) {
		t.Errorf("plain off loopback: %v", err)
	}
	if err := (api.ListenConfig{Addr: "127.0.0.1:0"}).Validate(); err != nil {
		t.Errorf("plain on loopback: %v", err)
	}
}

// Serve serves until ctx ends, then shuts down cleanly.
func TestListenerServe(t *testing.T) {
	l, err := api.Listen(api.ListenConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.Serve(ctx, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	}()
	res, err := http.Get(l.URL())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTeapot {
		t.Fatalf("got %d", res.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
