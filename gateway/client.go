package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// resourcePath is the root of every gateway resource, below BaseURL.
const resourcePath = "/agentgateway/resource/"

// Client calls one CC-Gateway (or the NSLB in front of a cluster). It is
// safe for concurrent use; create one per process and share it, so all
// requests use the same connection pool. Call [Client.Close] when done.
type Client struct {
	base        string // BaseURL + resourcePath, ends in "/"
	hc          *http.Client
	tr          *http.Transport
	reqTimeout  time.Duration
	pollTimeout time.Duration
	maxBody     int64
}

// New validates cfg, applies its defaults and builds the client: one
// [http.Client] over a pooled [http.Transport] (HTTP/1.1, TLS 1.2 or
// later, proxy from the environment like [http.DefaultTransport]). It
// fails with an error naming the field when cfg is invalid or a TLS file
// cannot be loaded.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	tr := newTransport(tc, cfg.MaxConns)
	hc := &http.Client{
		Transport: tr,
		// A redirect would turn the POST into a GET and carry the Guid
		// header elsewhere: return the 3xx as is (classified permanent).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Client{
		base:        strings.TrimRight(cfg.BaseURL, "/") + resourcePath,
		hc:          hc,
		tr:          tr,
		reqTimeout:  cfg.RequestTimeout,
		pollTimeout: cfg.PollTimeout,
		maxBody:     cfg.MaxBodyBytes,
	}, nil
}

// idleConnTimeout closes pooled connections before the gateway's Tomcat
// does (keepAliveTimeout, 20 s by default): a POST sent on a connection
// the server is closing fails without a reply and is not replayed.
const idleConnTimeout = 15 * time.Second

// maxHeaderBytes bounds the response headers (1xx answers included) read
// for one request. The gateway sends a handful of short headers; without
// this limit net/http reads up to 10 MiB of them, per connection, from a
// broken proxy or a hostile peer before the request timeout ends it.
const maxHeaderBytes = 64 << 10

// newTransport returns the pooled transport: at most maxConns connections,
// all of them kept idle for reuse. Timeouts come from each request's ctx.
func newTransport(tc *tls.Config, maxConns int) *http.Transport {
	return &http.Transport{
		MaxResponseHeaderBytes: maxHeaderBytes,
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           maxConns,
		MaxIdleConnsPerHost:    maxConns,
		MaxConnsPerHost:        maxConns,
		IdleConnTimeout:        idleConnTimeout,
		ExpectContinueTimeout:  time.Second,
	}
}

// Close closes the idle pooled connections. Requests in flight are not
// interrupted; cancel their ctx for that. The client stays usable.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// call describes one request to the gateway.
type call struct {
	op      string        // Error.Op
	method  string        // HTTP method
	path    string        // below resourcePath, built from validated input only
	guid    string        // Guid header; "" sends none (sign-in)
	body    any           // JSON request body; nil sends none
	timeout time.Duration // per-request timeout
	secrets []string      // removed from the gateway's message (guid, number)
}

// reply is a gateway answer with HTTP 200 and retcode "0".
type reply struct {
	header http.Header
	env    envelope
}

// do sends r and returns the decoded success reply, or an *Error. The body
// is always closed, and read to its end when it fits MaxBodyBytes, so the
// connection returns to the pool.
func (c *Client) do(ctx context.Context, r call) (*reply, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, &Error{Op: r.op, Err: err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &Error{Op: r.op, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	data, err := readBody(resp.Body, c.maxBody)
	if err == nil && ctx.Err() != nil && !json.Valid(data) {
		// The deadline cut the body. net/http can report that as a clean
		// EOF (the server ends the chunked body when it sees the TLS
		// close_notify); report the timeout, not a malformed answer.
		err = ctx.Err()
	}
	if err != nil {
		return nil, &Error{Op: r.op, StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header, time.Now()), Err: err}
	}
	env, err := checkResponse(r.op, resp, data, r.secrets)
	if err != nil {
		return nil, err
	}
	return &reply{header: resp.Header, env: env}, nil
}

// newRequest builds the HTTP request of r. Its errors carry no URL.
func (c *Client) newRequest(ctx context.Context, r call) (*http.Request, error) {
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot encode request: %v", ErrInvalidInput, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path, body)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot build request", ErrInvalidInput)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "callcontrol-gateway")
	if r.guid != "" {
		req.Header.Set("Guid", r.guid)
	}
	// W3C trace context of ctx, when it has one (the worker's request span):
	// harmless to the gateway, useful to anything tracing in between.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	return req, nil
}

// stripURL removes the [url.Error] wrapper that [http.Client.Do] puts
// around transport errors: its text holds the URL, and the URL of a
// disconnect holds the phone number.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}
