package mail

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// SMTP says how to reach the SMTP server.
type SMTP struct {
	Address  string // host:port
	User     string // empty: no authentication
	Password string
	TLS      string         // off, starttls (required, on the given port) or tls (implicit TLS)
	Timeout  time.Duration  // of the connection and each command; 0 means 30 s
	RootCAs  *x509.CertPool // to check the server's certificate; nil: the system's
}

// client builds a go-mail client for these settings (it dials later).
func (s SMTP) client() (*gomail.Client, error) {
	host, portText, err := net.SplitHostPort(s.Address)
	if err != nil {
		return nil, fmt.Errorf("SMTP address %q: %w", s.Address, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("SMTP port %q: %w", portText, err)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: s.RootCAs})}
	switch s.TLS {
	case "", "off":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("SMTP TLS mode %q: want off, starttls or tls", s.TLS)
	}
	if s.User != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.User), gomail.WithPassword(s.Password))
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP client for %s: %w", s.Address, err)
	}
	return c, nil
}

// message is one outbox row as the sender delivers it.
type message struct {
	ID        string    `db:"id"`
	Recipient string    `db:"recipient"`
	Subject   string    `db:"subject"`
	Body      string    `db:"body"`
	CreatedAt time.Time `db:"created_at"`
	Attempts  int       `db:"attempts"`
}

// MessageID is the Message-ID (without angle brackets) of the outbox row
// id: the same at every attempt, so that a duplicate delivery (the server
// accepted it, the sender died before recording that) is recognisable.
func MessageID(id, from string) string {
	domain := "zikao.localhost"
	if a, err := mail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			domain = a.Address[i+1:]
		}
	}
	return "outbox-" + id + "@" + domain
}

// build makes the e-mail of an outbox row.
func build(m message, from string) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("sender address: %w", err)
	}
	if err := msg.To(m.Recipient); err != nil {
		return nil, fmt.Errorf("recipient of outbox message %s: %s", m.ID, scrub(err.Error()))
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(MessageID(m.ID, from))
	msg.SetDateWithValue(m.CreatedAt)
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	return msg, nil
}

var address = regexp.MustCompile(`[^\s<>()",;:@]+@[^\s<>()",;:@]+`)

// scrub removes e-mail addresses from an error's text (SMTP servers quote
// the recipient in their refusals): what is logged or stored in last_error
// names no person.
func scrub(s string) string { return address.ReplaceAllString(s, "<address>") }
