package events

// A small JSON Schema validator, enough for the keywords the schemas in
// schema/ use, so that encoded Go values can be checked against them.

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"
)

// jsonType is the JSON Schema type of a value decoded by encoding/json.
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// validate checks v against the subset of JSON Schema the schemas in
// schema/ use (type, enum, pattern, lengths, bounds, date-time, required,
// properties) and returns what it breaks.
func validate(s map[string]any, v any, at string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if typ, ok := s["type"]; ok && !slices.Contains(property{Type: typ}.types(), jsonType(v)) {
		fail("%s, want type %v", jsonType(v), typ)
		return errs
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	num := func(key string) (float64, bool) { f, ok := s[key].(float64); return f, ok }
	switch v := v.(type) {
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			fail("%q does not match %s", v, p)
		}
		n := float64(utf8.RuneCountInString(v))
		if m, ok := num("minLength"); ok && n < m {
			fail("%q is shorter than %v", v, m)
		}
		if m, ok := num("maxLength"); ok && n > m {
			fail("%q is longer than %v", v, m)
		}
		if _, err := time.Parse(time.RFC3339Nano, v); s["format"] == "date-time" && err != nil {
			fail("%q is not a date-time", v)
		}
	case float64:
		if m, ok := num("minimum"); ok && v < m {
			fail("%v is less than %v", v, m)
		}
		if m, ok := num("maximum"); ok && v > m {
			fail("%v is more than %v", v, m)
		}
	case map[string]any:
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := v[r.(string)]; !ok {
				fail("%s is required", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, x := range v {
			if p, ok := props[k].(map[string]any); ok {
				errs = append(errs, validate(p, x, at+"."+k)...)
			}
		}
	}
	return errs
}
