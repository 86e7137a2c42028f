package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/sms"
)

// startSMS starts the SMS provider's stand-in on a free port, keeping its
// messages in a temporary file, gives the API server a sender for the
// codes it writes, and runs a worker's sender for the rest.
func startSMS(ctx context.Context, db *sqlx.DB) (stop func(), err error) {
	dir, err := os.MkdirTemp("", "zikao-sms-")
	if err != nil {
		return nil, err
	}
	if smsGateway, err = sms.NewStandIn("k", "s", filepath.Join(dir, "messages.jsonl")); err != nil {
		return nil, err
	}
	httpServer := httptest.NewServer(smsGateway)
	smsGatewayURL = httpServer.URL
	newSender := func() *sms.Sender {
		return &sms.Sender{DB: db, Provider: sms.NewGateway(httpServer.URL, "k", "s", sms.DefaultSignName, 5*time.Second),
			Interval: 100 * time.Millisecond, Backoff: time.Second, Attempted: server.SMSMetrics.Attempted}
	}
	server.SMS = newSender()
	senderCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { newSender().Run(senderCtx); close(done) }()
	return func() {
		cancel()
		<-done
		httpServer.Close()
		_ = smsGateway.Close()
		os.RemoveAll(dir)
	}, nil
}

type smsMessage struct {
	ID         string    `json:"id"`
	Phone      string    `json:"phone"`
	Text       string    `json:"text"`
	ReceivedAt time.Time `json:"received_at"`
}

// smsTo waits until n texts to phone have arrived at the stand-in (or 15 s
// passed) and returns them, newest first, read through its API.
func smsTo(t testing.TB, phone string, n int) []smsMessage {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(smsGatewayURL + "/api/v1/messages?phone=" + phone)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Messages []smsMessage `json:"messages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) >= n || time.Now().After(deadline) {
			return out.Messages
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var sixDigits = regexp.MustCompile(`(^|[^0-9])([0-9]{6})([^0-9]|$)`)

// smsCode asks for a code for phone and purpose and reads it from the
// stand-in (the newest text to the phone).
func smsCode(t testing.TB, phone, purpose string) string {
	t.Helper()
	before := len(smsTo(t, phone, 0))
	want(t, caller{t: t}.json(http.MethodPost, "/sms-codes", map[string]string{"phone": phone, "purpose": purpose}), http.StatusAccepted, "")
	msgs := smsTo(t, phone, before+1)
	if len(msgs) != before+1 {
		t.Fatalf("no code for %s (%s) reached the SMS stand-in", phone, purpose)
	}
	m := sixDigits.FindStringSubmatch(msgs[0].Text)
	if m == nil {
		t.Fatalf("no code in %q", msgs[0].Text)
	}
	return m[2]
}
