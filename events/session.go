package events

import "time"

// Session is the value stored under an agent's ID in [BucketSessions]: the
// GUID to send to the gateway for that agent. The poller (or whoever signs
// the agent in) writes it; workers read it through a watched cache. The GUID
// is a secret and is never logged.
type Session struct {
	GUID      string    `json:"guid"`
	AuthMode  int       `json:"auth_mode,omitempty"` // 1 static, 2 rotating
	UpdatedAt time.Time `json:"updated_at"`
}
