package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"
)

func TestSignIn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bodies := make(chan map[string]any, 1)
	b.mux.HandleFunc("/onlineagent/101", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodPut)
		testHeader(t, r, "Content-Type", "application/json; charset=UTF-8")
		if g := r.Header.Values("Guid"); len(g) != 0 {
			t.Errorf("sign-in sent Guid %q", g)
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("body: %v", err)
		}
		bodies <- body
		respond(w, http.StatusOK, `{"message":"","retcode":"0","result":{"workno":"101","serverName":"AgentGateway"}}`,
			"Set-GUID", "JSESSIONID="+testGUID)
	})
	no := false
	guid, err := b.client.SignIn(context.Background(), testAgent, SignInRequest{PhoneNum: "70001", AutoAnswer: &no, Status: 4}, false)
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	if guid != testGUID {
		t.Fatalf("guid %q, want %q", guid, testGUID)
	}
	want := map[string]any{"password": "", "phonenum": "70001", "autoanswer": false, "status": 4.0}
	if got := <-bodies; !reflect.DeepEqual(got, want) {
		t.Fatalf("body %v, want %v", got, want)
	}
}

func TestSignIn_Force(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("PUT /onlineagent/59999/forcelogin", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, ok, "Set-GUID", "JSESSIONID=abc.AgentGateway1; Path=/")
	})
	guid, err := b.client.SignIn(context.Background(), 59999, SignInRequest{Password: "secret"}, true)
	if err != nil || guid != "abc.AgentGateway1" {
		t.Fatalf("SignIn = %q, %v; want abc.AgentGateway1", guid, err)
	}
}

func TestSignIn_Errors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("PUT /onlineagent/101", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, retcode("100-002", "the agent has signed in"))
	})
	b.mux.HandleFunc("PUT /onlineagent/102", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, ok) // no Set-GUID
	})
	b.mux.HandleFunc("PUT /onlineagent/103", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, ok, "Set-GUID", "JSESSIONID=")
	})
	b.mux.HandleFunc("PUT /onlineagent/104", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, retcode("100-004", "wrong password hunter2"))
	})

	_, err := b.client.SignIn(context.Background(), 101, SignInRequest{}, false)
	if e := asError(t, err); e.Op != "signin" || e.RetCode != "100-002" {
		t.Fatalf("100-002: error %+v", e)
	}
	wantClass(t, err, ClassPermanent)

	for _, agent := range []int{102, 103} {
		_, err = b.client.SignIn(context.Background(), agent, SignInRequest{}, false)
		if !errors.Is(err, ErrMalformedResponse) {
			t.Fatalf("agent %d without Set-GUID: error %v, want ErrMalformedResponse", agent, err)
		}
		wantClass(t, err, ClassTransient)
	}

	_, err = b.client.SignIn(context.Background(), 104, SignInRequest{Password: "hunter2"}, false)
	if e := asError(t, err); e.Message != "wrong password ***" {
		t.Fatalf("message %q, want the password removed", e.Message)
	}

	hits := b.hits.Load()
	_, err = b.client.SignIn(context.Background(), 60000, SignInRequest{}, true)
	if e := asError(t, err); e.Op != "signin" || !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("agent 60000: error %v", err)
	}
	if b.hits.Load() != hits {
		t.Fatal("an invalid sign-in reached the server")
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("/onlineagent/101/logout", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodDelete)
		testHeader(t, r, "Guid", testGUID)
		respond(w, http.StatusOK, ok)
	})
	b.mux.HandleFunc("DELETE /onlineagent/102/logout", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, retcode("100-006", "agent not signed in"))
	})
	if err := b.client.Logout(context.Background(), 101, testGUID); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	err := b.client.Logout(context.Background(), 102, testGUID)
	if e := asError(t, err); e.Op != "logout" {
		t.Fatalf("Op %q", e.Op)
	}
	wantClass(t, err, ClassSession)

	hits := b.hits.Load()
	for _, err := range []error{
		b.client.Logout(context.Background(), 100, testGUID),
		b.client.Logout(context.Background(), 101, "x\r\nGuid: y"),
	} {
		if !errors.Is(err, ErrInvalidInput) || asError(t, err).Op != "logout" {
			t.Errorf("error %v, want invalid input of logout", err)
		}
	}
	if b.hits.Load() != hits {
		t.Fatal("an invalid logout reached the server")
	}
}
