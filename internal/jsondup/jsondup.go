// Package jsondup finds object keys that appear twice in one JSON object.
//
// JSON (RFC 8259 section 4) leaves the meaning of a repeated key to the
// parser: encoding/json keeps the last copy, other parsers the first or
// both. A payload read from outside that repeats a key therefore has no
// single meaning, and callcontrol refuses it before acting on it.
package jsondup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// Error reports a key that appears twice in one object.
type Error struct {
	Key   string // the key as decoded (escapes resolved), of its second copy
	Depth int    // 1 for a key of the top-level object, 2 one object or array down, ...
}

func (e *Error) Error() string { return fmt.Sprintf("key %q repeated at depth %d", e.Key, e.Depth) }

// Options say which keys count as the same and where to look.
type Options struct {
	// Fold compares keys as encoding/json matches them to struct fields:
	// equal under Unicode case folding ([strings.EqualFold]). Without it
	// keys must be equal byte for byte to be repeats.
	Fold bool
	// Skip, when set, is asked for every key at depth 1: when it returns
	// true, the key's value is read without looking for repeats in it (the
	// key itself is still checked against its siblings).
	Skip func(key string) bool
}

// linearMax is the most keys of one object compared pairwise; beyond it an
// object's keys go into a map, so that a large object costs O(n).
const linearMax = 16

// Check reads the single JSON value in data and returns an *[Error] for
// the first key repeated within one object, a syntax error from
// encoding/json for malformed JSON, or nil. It streams tokens through a
// [json.Decoder], so its memory is bounded by the nesting and by the keys
// of the open objects.
func Check(data []byte, o Options) error {
	s := scanner{dec: json.NewDecoder(bytes.NewReader(data)), o: o}
	if err := s.value(0, false); err != nil {
		return err
	}
	if _, err := s.dec.Token(); err != io.EOF {
		return fmt.Errorf("jsondup: data after the top-level value")
	}
	return nil
}

type scanner struct {
	dec  *json.Decoder
	o    Options
	keys []string // the keys of every open object, innermost last
}

// value reads one value at depth; skip reads it without checks.
func (s *scanner) value(depth int, skip bool) error {
	tok, err := s.dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return s.object(depth+1, skip)
	case json.Delim('['):
		for s.dec.More() {
			if err := s.value(depth+1, skip); err != nil {
				return err
			}
		}
		_, err = s.dec.Token() // ']'
		return err
	}
	return nil
}

// object reads the members of an object whose '{' was read.
func (s *scanner) object(depth int, skip bool) error {
	start := len(s.keys)
	defer func() { s.keys = s.keys[:start] }()
	var big map[string]struct{} // keys past linearMax, normalized
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if !skip {
			if s.seen(s.keys[start:], &big, key) {
				return &Error{Key: key, Depth: depth}
			}
		}
		skipValue := skip || depth == 1 && s.o.Skip != nil && s.o.Skip(key)
		if err := s.value(depth, skipValue); err != nil {
			return err
		}
	}
	_, err := s.dec.Token() // '}'
	return err
}

// seen reports whether key repeats one of keys (or of *big), and records it.
func (s *scanner) seen(keys []string, big *map[string]struct{}, key string) bool {
	if *big == nil {
		for _, k := range keys {
			if k == key || s.o.Fold && strings.EqualFold(k, key) {
				return true
			}
		}
		if len(keys) < linearMax {
			s.keys = append(s.keys, key)
			return false
		}
		*big = make(map[string]struct{}, 2*linearMax)
		for _, k := range keys {
			(*big)[s.norm(k)] = struct{}{}
		}
	}
	n := s.norm(key)
	if _, ok := (*big)[n]; ok {
		return true
	}
	(*big)[n] = struct{}{}
	return false
}

// norm maps key to a representative of the keys equal to it: itself, or
// with Fold each rune replaced by the smallest rune of its case-folding
// orbit, so that norm(a) == norm(b) exactly when strings.EqualFold(a, b).
func (s *scanner) norm(key string) string {
	if !s.o.Fold {
		return key
	}
	var b strings.Builder
	b.Grow(len(key))
	for _, r := range key {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}
