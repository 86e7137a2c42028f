package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stats counts what the clients did, for the report.
type stats struct {
	mu        sync.Mutex
	requests  int
	retries   map[string]int // by reason
	oks       []okAttempt    // submissions and decisions answered 2xx
	anomalies []string
	steps     atomic.Int64 // steps finished, for the fault schedule
}

// okAttempt is one state-changing request that succeeded.
type okAttempt struct {
	sent, done time.Time
	path       string
}

func newStats() *stats { return &stats{retries: map[string]int{}} }

// request counts one request; a submission or decision answered 2xx (they
// need every part: PostgreSQL, Temporal, a worker; a try also the identity
// service) marks a recovery. (An online challenge needs PostgreSQL only.)
func (s *stats) request(r request, sent time.Time, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if r.method == http.MethodPost && strings.HasPrefix(r.path, "/registrations") && !strings.HasSuffix(r.path, "/challenge") &&
		status >= 200 && status < 300 {
		s.oks = append(s.oks, okAttempt{sent: sent, done: time.Now(), path: r.path})
	}
}

func (s *stats) retry(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retries[reason]++
}

// anomaly notes an answer the contract does not allow (no personal data).
func (s *stats) anomaly(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.anomalies = append(s.anomalies, fmt.Sprintf(format, args...))
}

// Retry reasons.
const (
	retryNetwork = "network error"
	retry5xx     = "5xx"
	// retryIdentity: 503 verification_unavailable to an online try (the
	// identity service did not answer; no try used): sent again with the
	// same challenge and key.
	retryIdentity = "503 verification_unavailable"
	retry429      = "429"
	retryConflict = "409 (status not moved yet)"
	retryPoll     = "poll error"
)

// caller sends requests as one account.
type caller struct {
	api       *apiClient
	token     string
	accountID int64
	rng       *rand.Rand // backoff jitter
}

// apiClient is the HTTP client of every caller.
type apiClient struct {
	base    string // http://host:port/api/v1
	hc      *http.Client
	stats   *stats
	timeout time.Duration // how long one step keeps retrying
}

func newAPIClient(addr string, concurrency int, st *stats, stepTimeout time.Duration) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency * 2
	return &apiClient{base: "http://" + addr + "/api/v1", hc: &http.Client{Timeout: 45 * time.Second, Transport: tr},
		stats: st, timeout: stepTimeout}
}

// request is one HTTP request, sent again as is on a retry.
type request struct {
	method      string
	path        string
	body        []byte
	contentType string
	key         string // Idempotency-Key of a state-changing request
}

func jsonRequest(method, path string, body any, key string) request {
	b, _ := json.Marshal(body)
	return request{method: method, path: path, body: b, contentType: "application/json", key: key}
}

// answer is what one attempt got.
type answer struct {
	status     int
	body       []byte
	err        error // no answer: the request may or may not have arrived
	retryAfter time.Duration
}

// code is the error code of an error body.
func (a answer) code() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(a.body, &e)
	return e.Error.Code
}

func (a answer) String() string {
	if a.err != nil {
		return "no answer: " + a.err.Error()
	}
	if c := a.code(); c != "" {
		return fmt.Sprintf("%d %s", a.status, c)
	}
	return strconv.Itoa(a.status)
}

// once sends a request one time.
func (c *caller) once(ctx context.Context, r request) answer {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.api.base+r.path, body)
	if err != nil {
		return answer{err: err}
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.key != "" {
		req.Header.Set("Idempotency-Key", r.key)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	sent := time.Now()
	resp, err := c.api.hc.Do(req)
	if err != nil {
		c.api.stats.request(r, sent, 0)
		return answer{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		c.api.stats.request(r, sent, 0)
		return answer{err: fmt.Errorf("read answer: %w", err)}
	}
	c.api.stats.request(r, sent, resp.StatusCode)
	a := answer{status: resp.StatusCode, body: raw}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		a.retryAfter = time.Duration(s) * time.Second
	}
	return a
}

// verdict is what a 409 means for a decision.
type verdict int

const (
	retrySame   verdict = iota // not applied yet: send it again with the same key
	wasApplied                 // an earlier attempt was applied
	notApplying                // refused for good
)

// outcome is how a state-changing request ended.
type outcome struct {
	answer    answer
	attempts  int
	ambiguous bool // some attempt got no answer or a 5xx: it may have been applied
	inferred  bool // success inferred from a 409 after an ambiguous attempt
}

// errGaveUp: a step kept failing for the whole step timeout.
var errGaveUp = errors.New("gave up")

// send sends a state-changing request until it succeeds, retrying network
// errors, 5xx and 429 with the same Idempotency-Key, with backoff (or the
// answer's Retry-After, when longer), for at most the step timeout.
// onConflict (may be nil) judges a 409.
func (c *caller) send(ctx context.Context, r request, onConflict func(answer, bool) verdict) (outcome, error) {
	var out outcome
	deadline := time.Now().Add(c.api.timeout)
	backoff := 100 * time.Millisecond
	for {
		out.attempts++
		a := c.once(ctx, r)
		out.answer = a
		reason, wait := "", time.Duration(0)
		switch {
		case ctx.Err() != nil:
			return out, ctx.Err()
		case a.err != nil:
			reason, out.ambiguous = retryNetwork, true
		case a.status >= 500:
			reason, wait, out.ambiguous = retry5xx, a.retryAfter, true
			if a.code() == "verification_unavailable" {
				reason = retryIdentity
			}
		case a.status == http.StatusTooManyRequests:
			reason, wait = retry429, a.retryAfter
		case a.status >= 200 && a.status < 300:
			return out, nil
		case a.status == http.StatusConflict && onConflict != nil:
			switch onConflict(a, out.ambiguous) {
			case wasApplied:
				out.inferred = true
				return out, nil
			case notApplying:
				return out, fmt.Errorf("%s %s answered %s", r.method, routeOf(r.path), a)
			}
			reason = retryConflict
		default:
			return out, fmt.Errorf("%s %s answered %s", r.method, routeOf(r.path), a)
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%w after %d attempts of %s %s: last %s", errGaveUp, out.attempts, r.method, routeOf(r.path), a)
		}
		c.api.stats.retry(reason)
		if err := c.pause(ctx, max(wait, c.jitter(backoff))); err != nil {
			return out, err
		}
		backoff = min(backoff*2, 3*time.Second)
	}
}

// get reads a JSON answer into v, retrying what may pass (no answer, 5xx,
// 429) for at most the step timeout; any other answer but 200 is an error.
func (c *caller) get(ctx context.Context, path string, v any) error {
	deadline := time.Now().Add(c.api.timeout)
	for {
		a := c.once(ctx, request{method: http.MethodGet, path: path})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case a.status == http.StatusOK:
			if err := json.Unmarshal(a.body, v); err != nil {
				return fmt.Errorf("GET %s: %w", routeOf(path), err)
			}
			return nil
		case a.err == nil && a.status < 500 && a.status != http.StatusTooManyRequests:
			return fmt.Errorf("GET %s answered %s", routeOf(path), a)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: GET %s: last %s", errGaveUp, routeOf(path), a)
		}
		c.api.stats.retry(retryPoll)
		if err := c.pause(ctx, c.jitter(200*time.Millisecond)); err != nil {
			return err
		}
	}
}

// jitter is d, give or take a half.
func (c *caller) jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(c.rng.Int64N(int64(d)))
}

func (c *caller) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// routeOf names a request path without the ids and queries in it.
func routeOf(path string) string {
	out := []byte{}
	for i := 0; i < len(path); i++ {
		if path[i] == '?' {
			break
		}
		out = append(out, path[i])
	}
	parts := bytes.Split(out, []byte("/"))
	for i, p := range parts {
		if len(p) == 36 && bytes.Count(p, []byte("-")) == 4 {
			parts[i] = []byte("{id}")
		}
	}
	return string(bytes.Join(parts, []byte("/")))
}

// jsonDecode decodes a JSON answer.
func jsonDecode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
