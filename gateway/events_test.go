package gateway

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestPollEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		setGUID string
		want    *Event
		wantSet string
	}{
		{name: "empty poll", body: `{"message":"","retcode":"0"}`},
		{name: "null event", body: `{"message":"","retcode":"0","event":null}`},
		{
			name: "content null",
			body: `{"message":"","retcode":"0","event":{"eventType":"AgentOther_InService","workNo":"101","content":null}}`,
			want: &Event{Type: "AgentOther_InService", WorkNo: "101", Content: []byte("null")},
		},
		{
			name: "content string",
			body: `{"message":"","retcode":"0","event":{"eventType":"AgentEvent_Call_Release","workNo":"101","content":"1456403549-15"}}`,
			want: &Event{Type: "AgentEvent_Call_Release", WorkNo: "101", Content: []byte(`"1456403549-15"`)},
		},
		{
			name: "content object with eventGenTime",
			body: `{"message":"","retcode":"0","event":{"eventType":"AgentEvent_Customer_Release","workNo":"101",` +
				`"content":{"callid":"1456403549-15","number":"88880001"},"eventGenTime":1700000000000}}`,
			want: &Event{Type: "AgentEvent_Customer_Release", WorkNo: "101",
				Content: []byte(`{"callid":"1456403549-15","number":"88880001"}`), GenTime: 1700000000000},
		},
		{
			name: "numeric workNo, string eventGenTime, no content",
			body: `{"retcode":"0","event":{"eventType":"AgentState_Ready","workNo":101,"eventGenTime":"1700000000001"}}`,
			want: &Event{Type: "AgentState_Ready", WorkNo: "101", GenTime: 1700000000001},
		},
		{
			name:    "rotated GUID",
			body:    `{"message":"","retcode":"0"}`,
			setGUID: "JSESSIONID=new-guid.AgentGateway0",
			wantSet: "new-guid.AgentGateway0",
		},
		{
			name:    "rotated GUID with event",
			body:    `{"message":"","retcode":"0","event":{"eventType":"AgentState_Ready","workNo":"101","content":null}}`,
			setGUID: "JSESSIONID=next.AgentGateway1",
			want:    &Event{Type: "AgentState_Ready", WorkNo: "101", Content: []byte("null")},
			wantSet: "next.AgentGateway1",
		},
		{name: "unusable Set-GUID ignored", body: `{"retcode":"0"}`, setGUID: "JSESSIONID=a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("/agentevent/101", func(w http.ResponseWriter, r *http.Request) {
				testMethod(t, r, http.MethodGet)
				testHeader(t, r, "Guid", testGUID)
				var h []string
				if tt.setGUID != "" {
					h = []string{"Set-GUID", tt.setGUID}
				}
				respond(w, http.StatusOK, tt.body, h...)
			})
			p, err := b.client.PollEvent(context.Background(), testAgent, testGUID)
			if err != nil {
				t.Fatalf("PollEvent: %v", err)
			}
			if p.SetGUID != tt.wantSet {
				t.Errorf("SetGUID %q, want %q", p.SetGUID, tt.wantSet)
			}
			if !sameEvent(p.Event, tt.want) {
				t.Errorf("event %+v, want %+v", p.Event, tt.want)
			}
		})
	}
}

// sameEvent compares events, Content by its bytes.
func sameEvent(a, b *Event) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Type == b.Type && a.WorkNo == b.WorkNo && string(a.Content) == string(b.Content) && a.GenTime == b.GenTime
}

func TestPollEvent_Errors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("GET /agentevent/101", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, retcode("000-003", "no right"))
	})
	b.mux.HandleFunc("GET /agentevent/102", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, `{"retcode":"0","event":{"eventType":"X","eventGenTime":"soon"}}`)
	})
	_, err := b.client.PollEvent(context.Background(), 101, testGUID)
	if e := asError(t, err); e.Op != "poll" || e.RetCode != "000-003" {
		t.Fatalf("error %+v", e)
	}
	wantClass(t, err, ClassSession)
	// A bad eventGenTime loses nothing: the event is kept, the time marked.
	poll, err := b.client.PollEvent(context.Background(), 102, testGUID)
	if err != nil || poll.Event == nil || poll.Event.Type != "X" || poll.Event.GenTime != 0 || !poll.Event.GenTimeUnparsed {
		t.Fatalf("bad eventGenTime: %+v, %v; want the event, GenTime 0, marked unparsed", poll.Event, err)
	}
	hits := b.hits.Load()
	if _, err := b.client.PollEvent(context.Background(), 101, ""); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("empty guid: %v", err)
	}
	if _, err := b.client.PollEvent(context.Background(), 99, testGUID); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("agent 99: %v", err)
	}
	if b.hits.Load() != hits {
		t.Fatal("an invalid poll reached the server")
	}
}

// TestPollEvent_UsesPollTimeout checks that a poll held longer than
// RequestTimeout succeeds, and one held longer than PollTimeout fails.
func TestPollEvent_UsesPollTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.RequestTimeout = 20 * time.Millisecond; c.PollTimeout = 10 * time.Second })
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	b.mux.HandleFunc("GET /agentevent/101", func(w http.ResponseWriter, r *http.Request) {
		select { // the gateway's hold, shortened
		case <-time.After(200 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		respond(w, http.StatusOK, `{"message":"","retcode":"0"}`)
	})
	if _, err := b.client.PollEvent(context.Background(), 101, testGUID); err != nil {
		t.Fatalf("held poll: %v", err)
	}

	short := setup(t, func(c *Config) { c.PollTimeout = 50 * time.Millisecond })
	short.mux.HandleFunc("GET /agentevent/102", blockUntilGone(done))
	_, err := short.client.PollEvent(context.Background(), 102, testGUID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
	wantClass(t, err, ClassTransient)
}
