package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go/jetstream"
)

// staleAfter is how long a request holding a key may be in flight before
// another request with the key takes it over (its process died).
const staleAfter = 2 * time.Minute

// idempotency remembers Idempotency-Keys in [topology.BucketIdempotency]:
// the key (hashed) -> the hash of the token's name, the key and the body,
// and the first response once it is known. Keys are one namespace for all
// tokens, as command_ids are (a key becomes the command_id): another
// token's request with a key in use is another request (422).
type idempotency struct {
	js  jetstream.JetStream
	now func() time.Time
}

// storedResponse is a first response, replayed to a retry.
type storedResponse struct {
	Status            int             `json:"status"`
	Location          string          `json:"location,omitempty"`
	PreferenceApplied string          `json:"preference_applied,omitempty"`
	Body              json.RawMessage `json:"body"`
}

type idemRecord struct {
	RequestHash string          `json:"request_hash"`
	Started     time.Time       `json:"started"`
	Response    *storedResponse `json:"response,omitempty"`
}

// Errors of [idempotency.begin].
var (
	errKeyReused   = errors.New("the Idempotency-Key was used with another body")
	errKeyInFlight = errors.New("a request with this Idempotency-Key is in flight")
)

// claim is a key held by one request until it stores its response.
type claim struct {
	kv       jetstream.KeyValue
	key      string
	rec      idemRecord
	revision uint64
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// begin claims key for token's request body. It returns the stored first
// response when the same token, key and body were answered before,
// errKeyReused for another body (or token), errKeyInFlight while another
// request holds it.
func (i *idempotency) begin(ctx context.Context, token, key string, body []byte) (*claim, *storedResponse, error) {
	kv, err := i.js.KeyValue(ctx, topology.BucketIdempotency)
	if err != nil {
		return nil, nil, fmt.Errorf("bucket %s: %w", topology.BucketIdempotency, err)
	}
	c := &claim{kv: kv, key: hashOf(key), rec: idemRecord{RequestHash: hashOf(token, key, string(body)), Started: i.now()}}
	for range 3 {
		e, err := kv.Get(ctx, c.key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			rev, err := kv.Create(ctx, c.key, c.encode())
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // another request created it: read it
			}
			c.revision = rev
			return c, nil, err
		}
		if err != nil {
			return nil, nil, err
		}
		var old idemRecord
		if err := json.Unmarshal(e.Value(), &old); err != nil || old.RequestHash != c.rec.RequestHash {
			return nil, nil, errKeyReused
		}
		if old.Response != nil {
			return nil, old.Response, nil
		}
		if i.now().Sub(old.Started) < staleAfter {
			return nil, nil, errKeyInFlight
		}
		rev, err := kv.Update(ctx, c.key, c.encode(), e.Revision())
		if err == nil {
			c.revision = rev
			return c, nil, nil
		}
	}
	return nil, nil, errKeyInFlight
}

func (c *claim) encode() []byte {
	b, _ := json.Marshal(c.rec)
	return b
}

// finish stores the response; a failure leaves the claim to go stale.
func (c *claim) finish(ctx context.Context, resp *storedResponse) error {
	c.rec.Response = resp
	_, err := c.kv.Update(ctx, c.key, c.encode(), c.revision)
	return err
}

// release gives the key up (the request failed before publishing).
func (c *claim) release(ctx context.Context) {
	_ = c.kv.Delete(ctx, c.key, jetstream.LastRevision(c.revision))
}

// writeStored replays a first response.
func writeStored(w http.ResponseWriter, r *storedResponse) {
	if r.Location != "" {
		w.Header().Set("Location", r.Location)
	}
	if r.PreferenceApplied != "" {
		w.Header().Set("Preference-Applied", r.PreferenceApplied)
	}
	writeRaw(w, r.Status, append(bytes.Clone(r.Body), '\n'))
}

// published is the marker of a command published through the API with a
// 202 answer, so that its Location is not a 404 before a worker takes it
// (the commands stream has no index by command_id). Kept in the
// idempotency bucket under "command.<hash of the command_id>".
type published struct {
	AgentID     int       `json:"agent_id"`
	PublishedAt time.Time `json:"published_at"`
}

func publishedKey(id string) string { return "command." + hashOf(id) }

// markPublished stores the marker of cmd's command id.
func (i *idempotency) markPublished(ctx context.Context, id string, agent int) error {
	kv, err := i.js.KeyValue(ctx, topology.BucketIdempotency)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", topology.BucketIdempotency, err)
	}
	b, _ := json.Marshal(published{AgentID: agent, PublishedAt: i.now()})
	_, err = kv.Put(ctx, publishedKey(id), b)
	return err
}

// wasPublished returns the marker of command id, or nil.
func (i *idempotency) wasPublished(ctx context.Context, id string) (*published, error) {
	kv, err := i.js.KeyValue(ctx, topology.BucketIdempotency)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", topology.BucketIdempotency, err)
	}
	e, err := kv.Get(ctx, publishedKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p published
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return nil, nil
	}
	return &p, nil
}
