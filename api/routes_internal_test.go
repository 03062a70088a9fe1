package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// The document lists exactly the routes the server serves, each with the
// scope the server checks.
func TestDocumentRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Description string `json:"description"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var inDoc, served []string
	for path, ops := range doc.Paths {
		for m := range ops {
			inDoc = append(inDoc, strings.ToUpper(m)+" "+path)
		}
	}
	s := &Server{}
	for _, rt := range s.table() {
		served = append(served, rt.method+" "+rt.path)
		desc := doc.Paths[rt.path][strings.ToLower(rt.method)].Description
		if rt.scope != "" && rt.scope != anyScope && !strings.Contains(desc, "Scope: "+string(rt.scope)) {
			t.Errorf("%s %s: the document's description %q does not name the scope %s", rt.method, rt.path, desc, rt.scope)
		}
	}
	slices.Sort(inDoc)
	slices.Sort(served)
	if !slices.Equal(inDoc, served) {
		t.Fatalf("document %v,\nserved   %v", inDoc, served)
	}
}
