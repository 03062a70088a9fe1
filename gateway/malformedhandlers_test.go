package gateway

// The broken gateways of malformed_test.go: handlers that answer wrongly
// on purpose (endless or trickled bodies, floods of headers, a gzip bomb,
// truncated replies, raw bytes on a hijacked connection).

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// answer writes one complete answer.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		} else {
			w.Header()["Content-Type"] = nil // no sniffing either
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// endless writes a 200 answer whose JSON message never ends, until the
// client hangs up or the test ends.
func endless(done <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"retcode":"0","message":"`)
		chunk := strings.Repeat("x", 32<<10)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}
}

// gzipBomb answers the bomb. The transport decompresses it transparently;
// the body limit applies to the decompressed bytes.
func gzipBomb() http.HandlerFunc {
	bomb := bomb()
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bomb)
	}
}

// truncated announces a longer body than it sends, then closes.
func truncated() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, `{"retcode":"0"`)
		w.(http.Flusher).Flush()
		hijackClose(w, r)
	}
}

// trickleBody sends complete headers, then one byte of a valid body every
// 50 ms: the whole answer would take longer than any timeout.
func trickleBody(done <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		body := `{"message":"` + strings.Repeat(" ", 1000) + `","retcode":"0"}`
		for i := range len(body) {
			if _, err := io.WriteString(w, body[i:i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if !pause(r, done, 50*time.Millisecond) {
				return
			}
		}
	}
}

// rawAnswer takes over the connection and writes head; then, when every
// is set, one more byte of a header value every interval until the client
// hangs up or the test ends, else it closes the connection.
func rawAnswer(done <-chan struct{}, head string, every time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, bw := hijack(w)
		if conn == nil {
			return
		}
		defer conn.Close()
		bw.WriteString(head)
		bw.Flush()
		for every > 0 && pause(r, done, every) {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}
}

// headerFlood sends header lines as fast as the client reads them.
func headerFlood(done <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, bw := hijack(w)
		if conn == nil {
			return
		}
		defer conn.Close()
		bw.WriteString("HTTP/1.1 200 OK\r\n")
		line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
		for written := 0; written < 64<<20; written += len(line) {
			select {
			case <-done:
				return
			default:
			}
			if _, err := bw.WriteString(line); err != nil {
				return
			}
		}
		bw.Flush()
	}
}

// informationalFlood sends 100 Continue answers without end.
func informationalFlood(done <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, bw := hijack(w)
		if conn == nil {
			return
		}
		defer conn.Close()
		for i := 0; i < 1<<20; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				return
			}
			if bw.Flush() != nil {
				return
			}
		}
	}
}

func hijack(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter) {
	conn, bw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return nil, nil
	}
	return conn, bw
}

// pause waits d; it reports false when the client went away or the test
// ended first.
func pause(r *http.Request, done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-done:
	}
	return false
}

// waitGone blocks until the client went away or the test ended.
func waitGone(r *http.Request, done <-chan struct{}) {
	select {
	case <-r.Context().Done():
	case <-done:
	}
}
