package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
)

// The validation of the helper catches drift: a response the document
// does not describe (a status it does not list, a field of the wrong
// type, a problem as plain JSON) fails it.
func TestDocumentCatchesDrift(t *testing.T) {
	_, router := loadDoc(t)
	hr, _ := http.NewRequest("GET", "http://x/v1/commands/c1", nil)
	hr.Header.Set("Authorization", "Bearer x")
	route, params, err := router.FindRoute(hr)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerPresent}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	check := func(status int, ct, body string) error {
		h := http.Header{"Content-Type": {ct}}
		return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: status, Header: h, Body: io.NopCloser(bytes.NewReader([]byte(body))),
			Options: &openapi3filter.Options{IncludeResponseStatus: true}})
	}
	good := `{"command_id":"c1","ledger_state":"none","attempts":0,"pending":false}`
	if err := check(200, "application/json", good); err != nil {
		t.Fatalf("a good response fails: %v", err)
	}
	for name, c := range map[string]struct {
		status   int
		ct, body string
	}{
		"undocumented status": {418, "application/problem+json", `{"type":"x","title":"t","status":418}`},
		"wrong type":          {200, "application/json", strings.Replace(good, `"attempts":0`, `"attempts":"0"`, 1)},
		"missing field":       {200, "application/json", strings.Replace(good, `,"pending":false`, ``, 1)},
		"unknown state":       {200, "application/json", strings.Replace(good, `"none"`, `"lost"`, 1)},
		"problem as json":     {404, "application/json", `{"type":"x","title":"t","status":404}`},
	} {
		if check(c.status, c.ct, c.body) == nil {
			t.Errorf("%s: passes the document", name)
		}
	}
}
