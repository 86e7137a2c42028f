// Package identity talks to the citizen identity verification service
// (公民身份核验): a small HTTP client that sends an applicant's ID number,
// name, ID card photo, portrait and a short video in which the applicant
// reads four digits aloud, and gets back whether the person is who they say;
// and a local stand-in of the service for development and tests.
//
// The data sent are personal: neither the client nor the stand-in logs them,
// and no error text holds the ID number, the name or any file's contents.
package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"time"
)

// The service's results.
const (
	Match          = "match"           // the person is in the records and the faces match
	FaceMismatch   = "face_mismatch"   // the portrait is not the person of the ID card
	LivenessFailed = "liveness_failed" // the video does not show a live person
	NotInRecords   = "not_in_records"  // no such ID number and name in the records
)

// Path is where the service takes verifications.
const Path = "/api/v1/identity-verifications"

// ErrUnavailable is wrapped by every error of Verify: no result came back.
var ErrUnavailable = errors.New("identity verification service unavailable")

// StatusError is a refusal of the service (an answer 4xx other than 429),
// which Verify does not retry: the request itself is wrong (401: the
// credentials; 400: a field or a file). Verify's error wraps it along with
// ErrUnavailable.
type StatusError struct {
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// Request is one verification. Digits are the four digits the applicant
// was shown and read aloud in the video.
type Request struct {
	IDNumber    string
	Name        string
	Digits      string
	IDCardPhoto []byte
	Video       []byte
	Portrait    []byte
}

// Response is the service's answer.
type Response struct {
	Result string `json:"result"`
}

// Client calls the service. Each attempt gives up after HTTP's timeout;
// Verify makes up to Attempts attempts, waiting Backoff after the first
// failure and twice as long after each next one.
type Client struct {
	BaseURL  string
	User     string
	Key      string
	HTTP     *http.Client
	Attempts int
	Backoff  time.Duration
}

// NewClient returns a client whose every attempt gives up after timeout,
// making 3 attempts 200 ms then 400 ms apart.
func NewClient(baseURL, user, key string, timeout time.Duration) *Client {
	return &Client{BaseURL: baseURL, User: user, Key: key, HTTP: &http.Client{Timeout: timeout},
		Attempts: 3, Backoff: 200 * time.Millisecond}
}

// maxBackoff bounds the wait between two attempts.
const maxBackoff = 30 * time.Second

// Verify asks the service about r and returns its result: Match,
// FaceMismatch, LivenessFailed or NotInRecords. It retries network errors,
// timeouts, answers 5xx and 429 and answers that are no result, up to
// Attempts times, and stops when ctx ends. Every error wraps
// ErrUnavailable; that of a refusal (4xx other than 429) also wraps a
// *StatusError, and that of an ended ctx, ctx.Err().
func (c *Client) Verify(ctx context.Context, r Request) (string, error) {
	body, contentType, err := r.encode()
	if err != nil {
		return "", fmt.Errorf("%w: encode the request: %w", ErrUnavailable, err)
	}
	attempts := max(c.Attempts, 1)
	wait := c.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		result, retry, err := c.attempt(ctx, body, contentType)
		if err == nil {
			return result, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("%w: %w (attempt %d: %v)", ErrUnavailable, ctx.Err(), attempt, err)
		}
		if !retry {
			return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		last = err
		if attempt >= attempts {
			break
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return "", fmt.Errorf("%w: %w (after %d attempt(s), the last: %v)", ErrUnavailable, ctx.Err(), attempt, last)
			case <-t.C:
			}
			wait = min(2*wait, maxBackoff)
		}
	}
	return "", fmt.Errorf("%w: %d attempt(s), the last: %w", ErrUnavailable, attempts, last)
}

// attempt makes one call; retry says whether another one may succeed.
func (c *Client) attempt(ctx context.Context, body []byte, contentType string) (result string, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+Path, bytes.NewReader(body))
	if err != nil {
		return "", false, fmt.Errorf("make the request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.User, c.Key)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", true, err // a *url.Error: the method, the URL and the cause
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return "", true, fmt.Errorf("answered %s", resp.Status)
	case resp.StatusCode >= 400:
		return "", false, &StatusError{StatusCode: resp.StatusCode}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return "", true, fmt.Errorf("answered %s", resp.Status)
	}
	// The answer's text is not quoted in errors: it might echo the request.
	var out Response
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<16)).Decode(&out); err != nil {
		return "", true, errors.New("answered something other than JSON")
	}
	switch out.Result {
	case Match, FaceMismatch, LivenessFailed, NotInRecords:
		return out.Result, false, nil
	}
	return "", true, errors.New("answered no known result")
}

// encode writes r as multipart/form-data. File names are the field's,
// never the person's.
func (r Request) encode() ([]byte, string, error) {
	var b bytes.Buffer
	b.Grow(len(r.IDCardPhoto) + len(r.Video) + len(r.Portrait) + 2048)
	w := multipart.NewWriter(&b)
	for _, f := range []struct{ name, value string }{{"id_number", r.IDNumber}, {"name", r.Name}, {"digits", r.Digits}} {
		if err := w.WriteField(f.name, f.value); err != nil {
			return nil, "", err
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"id_card_photo", r.IDCardPhoto}, {"video", r.Video}, {"portrait", r.Portrait}} {
		h := make(textproto.MIMEHeader)
		contentType := http.DetectContentType(f.data)
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, f.name, f.name+extension(contentType)))
		h.Set("Content-Type", contentType)
		part, err := w.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		if _, err := part.Write(f.data); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return b.Bytes(), w.FormDataContentType(), nil
}

func extension(contentType string) string {
	switch contentType {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "video/mp4":
		return ".mp4"
	case "video/webm":
		return ".webm"
	}
	return ""
}
