package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3.1 document of the API (api/openapi.json),
// served at GET /v1/openapi.json. The tests validate every request and
// response against it.
//
//go:embed openapi.json
var OpenAPI []byte

func (s *Server) getOpenAPI(w http.ResponseWriter, _ *http.Request, _ *TokenEntry) {
	writeRaw(w, http.StatusOK, OpenAPI)
}
