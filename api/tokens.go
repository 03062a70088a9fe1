package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/callcontrol/callcontrol/events"
)

// Scope is a right a token grants.
type Scope string

// The scopes. Dead letters are read with [ScopeCommandsRead].
const (
	ScopeCommandsWrite Scope = "commands:write" // POST /v1/disconnects
	ScopeCommandsRead  Scope = "commands:read"  // GET /v1/commands/{id}, /v1/deadletters...
	ScopeEventsRead    Scope = "events:read"    // GET /v1/agents...
	ScopeDLQWrite      Scope = "dlq:write"      // POST /v1/deadletters/{seq}/replay
)

// AllScopes are every scope, in this order.
var AllScopes = []Scope{ScopeCommandsWrite, ScopeCommandsRead, ScopeEventsRead, ScopeDLQWrite}

// TokenFile is the JSON of a token file: tokens are stored as the
// SHA-256 of the token (hex), never in clear.
type TokenFile struct {
	Tokens []TokenEntry `json:"tokens"`
}

// TokenEntry is one token of a [TokenFile].
type TokenEntry struct {
	// Name names the client: it is logged and becomes the requested_by of
	// its commands (1-128 printable ASCII characters without spaces).
	Name string `json:"name"`
	// SHA256 is the hex SHA-256 of the token ([HashToken]).
	SHA256 string `json:"sha256"`
	// Scopes it grants.
	Scopes []Scope `json:"scopes"`
	// Agents, when set, limits the token to those agents.
	Agents *AgentRange `json:"agents,omitempty"`
}

// AgentRange is the agents From to To (inclusive) a token may act on.
type AgentRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// Contains reports whether agent is in r; a nil range contains every agent.
func (r *AgentRange) Contains(agent int) bool {
	return r == nil || (agent >= r.From && agent <= r.To)
}

// Tokens are the accepted tokens of a token file.
type Tokens struct {
	entries []token
}

type token struct {
	TokenEntry
	hash []byte
}

// TokenFileError is a token file that cannot be used.
type TokenFileError struct {
	Path string // "" for [ParseTokens]
	Err  error
}

func (e *TokenFileError) Error() string {
	if e.Path == "" {
		return "token file: " + e.Err.Error()
	}
	return "token file " + e.Path + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TokenFileError) Unwrap() error { return e.Err }

// LoadTokens reads and checks the token file at path. Any failure is a
// [*TokenFileError].
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &TokenFileError{Path: path, Err: err}
	}
	t, err := ParseTokens(data)
	if err != nil {
		err.(*TokenFileError).Path = path
	}
	return t, err
}

// ParseTokens checks a token file's JSON: at least one token, unique
// valid names, 64-hex hashes, known scopes, ranges of valid agents.
func ParseTokens(data []byte) (*Tokens, error) {
	var f TokenFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, &TokenFileError{Err: err}
	}
	if len(f.Tokens) == 0 {
		return nil, &TokenFileError{Err: fmt.Errorf("no tokens")}
	}
	t := &Tokens{}
	for i, e := range f.Tokens {
		tk, err := checkEntry(e, t)
		if err != nil {
			return nil, &TokenFileError{Err: fmt.Errorf("tokens[%d]: %w", i, err)}
		}
		t.entries = append(t.entries, tk)
	}
	return t, nil
}

func checkEntry(e TokenEntry, seen *Tokens) (token, error) {
	probe := events.DisconnectCommand{CommandID: "x", AgentID: events.AgentIDMin, Number: "1", RequestedBy: e.Name}
	if e.Name == "" || probe.Validate() != nil {
		return token{}, fmt.Errorf("name must be 1-%d printable ASCII characters without spaces", events.MaxTextLen)
	}
	if slices.ContainsFunc(seen.entries, func(o token) bool { return o.Name == e.Name }) {
		return token{}, fmt.Errorf("name %q is used twice", e.Name)
	}
	h, err := hex.DecodeString(e.SHA256)
	if err != nil || len(h) != sha256.Size {
		return token{}, fmt.Errorf("sha256 must be 64 hex digits (the SHA-256 of the token)")
	}
	for _, s := range e.Scopes {
		if !slices.Contains(AllScopes, s) {
			return token{}, fmt.Errorf("unknown scope %q (known: %v)", s, AllScopes)
		}
	}
	if r := e.Agents; r != nil && (r.From < events.AgentIDMin || r.To > events.AgentIDMax || r.From > r.To) {
		return token{}, fmt.Errorf("agents must be a range within %d-%d, got %d-%d", events.AgentIDMin, events.AgentIDMax, r.From, r.To)
	}
	return token{TokenEntry: e, hash: h}, nil
}

// lookup returns the entry of the presented token, or nil. Every entry's
// hash is compared in constant time, and all of them are compared.
func (t *Tokens) lookup(presented string) *TokenEntry {
	sum := sha256.Sum256([]byte(presented))
	var found *TokenEntry
	for i := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], t.entries[i].hash) == 1 {
			found = &t.entries[i].TokenEntry
		}
	}
	return found
}

// has reports whether e grants s.
func (e *TokenEntry) has(s Scope) bool { return slices.Contains(e.Scopes, s) }

// HashToken returns the hex SHA-256 of token, as a token file stores it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a new random token (256 bits, URL-safe base64).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewTokenFile returns a new token and the JSON of a token file that
// holds it (hashed) under name, with scopes.
func NewTokenFile(name string, scopes []Scope) (token string, file []byte, err error) {
	if token, err = NewToken(); err != nil {
		return "", nil, err
	}
	f := TokenFile{Tokens: []TokenEntry{{Name: name, SHA256: HashToken(token), Scopes: scopes}}}
	file, err = json.MarshalIndent(f, "", "  ")
	return token, append(file, '\n'), err
}
