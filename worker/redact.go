package worker

import (
	"bytes"
	"encoding/json"
	"strings"
)

// redactGUID returns a command payload fit to be kept after its execution
// (the dead-letter copy): without the GUID override, a secret. A JSON
// object loses every top-level key that reads "guid" in any casing
// (escaped spellings included) and is re-encoded with its other values
// byte for byte and its keys sorted; an object without such a key is
// returned unchanged. A payload that is not a JSON object, and so was
// never executed, is returned unchanged unless it mentions "guid" in any
// casing: then it is dropped (nil), as no GUID in it can be told apart.
func redactGUID(payload []byte) []byte {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil || obj == nil {
		if bytes.Contains(bytes.ToLower(payload), []byte("guid")) {
			return nil
		}
		return payload
	}
	found := false
	for k := range obj {
		if strings.EqualFold(k, "guid") {
			delete(obj, k)
			found = true
		}
	}
	if !found {
		return payload
	}
	out, err := json.Marshal(obj)
	if err != nil { // cannot happen: every value is valid JSON
		return nil
	}
	return out
}
