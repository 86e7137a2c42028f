// Package chsi talks to the national diploma registry (学信网, CHSI): a
// small HTTP client with a configurable address, credentials and timeout,
// and a local stand-in of the registry for development and tests.
package chsi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// CheckRequest asks whether a person holds an associate diploma or higher.
type CheckRequest struct {
	IDNumber string `json:"id_number"`
	Name     string `json:"name"`
}

// CheckResponse is the registry's answer.
type CheckResponse struct {
	Found bool `json:"found"`
}

// Client calls the registry.
type Client struct {
	BaseURL string
	User    string
	Key     string
	HTTP    *http.Client
}

// NewClient returns a client whose every call gives up after timeout.
func NewClient(baseURL, user, key string, timeout time.Duration) *Client {
	return &Client{BaseURL: baseURL, User: user, Key: key, HTTP: &http.Client{Timeout: timeout}}
}

// HasDiploma reports whether the registry knows an associate diploma (or
// higher) of that person. Errors are worth retrying: the registry may be
// down or overloaded for a while.
func (c *Client) HasDiploma(ctx context.Context, idNumber, name string) (bool, error) {
	body, err := json.Marshal(CheckRequest{IDNumber: idNumber, Name: name})
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/api/v1/diploma-checks", bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("diploma registry request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(c.User, c.Key)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return false, fmt.Errorf("call diploma registry: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("diploma registry answered %s", resp.Status)
	}
	var out CheckResponse
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<16)).Decode(&out); err != nil {
		return false, fmt.Errorf("read diploma registry answer: %w", err)
	}
	return out.Found, nil
}

// Diploma is a diploma the stand-in knows.
type Diploma struct {
	IDNumber      string
	Name          string
	DiplomaNumber string
}

// StandIn answers diploma checks from a fixed table, as the real registry
// would; it checks the same basic-auth credentials.
func StandIn(user, key string, diplomas []Diploma) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/diploma-checks", func(w http.ResponseWriter, r *http.Request) {
		if u, k, ok := r.BasicAuth(); !ok || u != user || k != key {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var req CheckRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		found := false
		for _, d := range diplomas {
			if d.IDNumber == req.IDNumber && d.Name == req.Name {
				found = true
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(CheckResponse{Found: found})
	})
	return mux
}
