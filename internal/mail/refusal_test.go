package mail

import (
	"errors"
	"fmt"
	"testing"

	gomail "github.com/wneessen/go-mail"
)

// The rule that tells a refusal for good from a failure to try again.
func TestPermanent(t *testing.T) {
	for _, c := range []struct {
		name     string
		stage    gomail.SendErrReason
		code     int
		enhanced string
		want     bool
	}{
		{"unknown mailbox", gomail.ErrSMTPRcptTo, 550, "5.1.1", true},
		{"mailbox unavailable, no enhanced status", gomail.ErrSMTPRcptTo, 550, "", true},
		{"bad address syntax", gomail.ErrSMTPRcptTo, 553, "5.1.3", true},
		{"address too long", gomail.ErrSMTPRcptTo, 500, "", true},
		{"message too big, at the end of DATA", gomail.ErrSMTPDataClose, 552, "5.3.4", true},
		{"content refused, at the end of DATA", gomail.ErrSMTPDataClose, 554, "5.6.0", true},
		{"mailbox busy", gomail.ErrSMTPRcptTo, 450, "4.2.1", false},
		{"greylisted", gomail.ErrSMTPRcptTo, 451, "4.7.1", false},
		{"try later, at the end of DATA", gomail.ErrSMTPDataClose, 421, "4.3.0", false},
		{"connection lost at RCPT TO (no reply)", gomail.ErrSMTPRcptTo, 0, "", false},
		{"relaying denied: our configuration", gomail.ErrSMTPRcptTo, 554, "5.7.1", false},
		{"authentication required at RCPT TO", gomail.ErrSMTPRcptTo, 530, "", false},
		{"sender refused at MAIL FROM", gomail.ErrSMTPMailFrom, 550, "5.1.8", false},
		{"STARTTLS required at MAIL FROM", gomail.ErrSMTPMailFrom, 530, "5.7.0", false},
		{"DATA command refused", gomail.ErrSMTPData, 554, "5.5.1", false},
		{"message not written (no reply)", gomail.ErrWriteContent, 0, "", false},
		{"connection check failed", gomail.ErrConnCheck, 0, "", false},
		{"RSET refused", gomail.ErrSMTPReset, 500, "", false},
	} {
		if got := permanent(c.stage, c.code, c.enhanced); got != c.want {
			t.Errorf("%s (%s, %d %s): permanent %v, want %v", c.name, c.stage, c.code, c.enhanced, got, c.want)
		}
	}
}

// An error that is no SendError of go-mail (a connection's, a wrapped
// one) is never a refusal.
func TestRefusalOfOtherErrors(t *testing.T) {
	for _, err := range []error{
		errors.New("550 5.1.1 looks like a reply but is not one"),
		fmt.Errorf("connect to the SMTP server: %w", errors.New("dial tcp 127.0.0.1:1: connection refused")),
		&gomail.SendError{Reason: gomail.ErrSMTPRcptTo}, // no reply code
	} {
		if reply, refused := refusal(err); refused || reply != "" {
			t.Errorf("%v: refused %v (%q), want not refused", err, refused, reply)
		}
	}
}
