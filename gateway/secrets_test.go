package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestError_NoSecrets drives every failure path and checks that no error
// text contains the GUID or the number (so neither the request URL), even
// when the gateway echoes them back.
func TestError_NoSecrets(t *testing.T) {
	t.Parallel()
	echo := "number " + testNumber + " guid " + testGUID + " at /agentgateway/resource/voicecall/101/disconnect/" + testNumber
	answers := []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) { respond(w, 200, retcode("200-024", echo)) },
		func(w http.ResponseWriter, r *http.Request) {
			respond(w, 500, "<html><h1>HTTP Status 500</h1>"+echo+"</html>")
		},
		func(w http.ResponseWriter, r *http.Request) { respond(w, 404, retcode("000-002", echo)) },
		func(w http.ResponseWriter, r *http.Request) { respond(w, 200, "<html>"+echo+"</html>") },
		func(w http.ResponseWriter, r *http.Request) { respond(w, 200, `{"retcode":"0","message":"`+echo) },
		func(w http.ResponseWriter, r *http.Request) { respond(w, 200, `{"retcode":{"n":"`+echo+`"}}`) },
		func(w http.ResponseWriter, r *http.Request) {
			respond(w, 200, `{"retcode":"1","message":{"g":"`+echo+`"}}`)
		},
		func(w http.ResponseWriter, r *http.Request) { respond(w, 200, `{"message":"`+echo+`"}`) },
		func(w http.ResponseWriter, r *http.Request) { respond(w, 200, strings.Repeat(echo, 100)) },
		func(w http.ResponseWriter, r *http.Request) {
			respond(w, 302, "", "Location", "https://x.invalid/"+echo)
		},
		func(w http.ResponseWriter, r *http.Request) { respond(w, 200, retcode(echo, echo)) },
		hijackClose,
		func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
	}
	b := setup(t, func(c *Config) { c.MaxBodyBytes = 2048; c.RequestTimeout = 100 * time.Millisecond })
	b.mux.HandleFunc("/voicecall/{agent}/disconnect/{number}", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.PathValue("agent"))
		answers[i-1000](w, r)
	})
	b.mux.HandleFunc("/agentevent/{agent}", func(w http.ResponseWriter, r *http.Request) {
		respond(w, 200, `{"retcode":"0","event":{"eventType":"X","eventGenTime":"`+echo+`"}}`)
	})
	ctx := context.Background()
	var errs []error
	for i := range answers {
		errs = append(errs, b.client.Disconnect(ctx, 1000+i, testNumber, testGUID))
	}
	// An eventGenTime that echoes secrets: the event is kept, the value not.
	if poll, err := b.client.PollEvent(ctx, 1000, testGUID); err != nil || poll.Event == nil || !poll.Event.GenTimeUnparsed {
		t.Errorf("poll with an echoing eventGenTime: %+v, %v", poll.Event, err)
	} else if got := fmt.Sprintf("%+v", *poll.Event); strings.Contains(got, testGUID) || strings.Contains(got, testNumber) {
		t.Errorf("event %s holds a secret", got)
	}
	errs = append(errs,
		b.client.Disconnect(ctx, testAgent, testNumber+"/../1", testGUID),
		b.client.Disconnect(ctx, testAgent, testNumber+"0000000000000000000000", testGUID),
		b.client.Disconnect(ctx, testAgent, testNumber, testGUID+"\r\nX: 1"),
		b.client.Disconnect(ctx, testAgent, testNumber, testGUID+" "),
		refusedClient(t).Disconnect(ctx, testAgent, testNumber, testGUID),
		newClient(t, setupTLS(t, nil).srv.URL).Disconnect(ctx, testAgent, testNumber, testGUID),
	)
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		msg := err.Error()
		for _, secret := range []string{testGUID, testNumber} {
			if strings.Contains(msg, secret) {
				t.Errorf("case %d: error %q contains %q", i, msg, secret)
			}
		}
	}
}

// refusedClient returns a client of an address where nothing listens.
func refusedClient(t *testing.T) *Client {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return newClient(t, "http://"+addr)
}
