package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"syscall"
	"time"
)

// MailpitBinary returns the path of Mailpit, the mail catcher, built (the
// first time, in about a minute) from the Go module proxy as a tool of
// tools/mailpit/go.mod.
func MailpitBinary(ctx context.Context) (string, error) {
	return toolBinary(ctx, "tools/mailpit/go.mod", "mailpit", "Mailpit")
}

// MailpitOptions says how to start Mailpit.
type MailpitOptions struct {
	UIPort   int       // web UI and API port on 127.0.0.1; 0 picks a free one
	SMTPPort int       // SMTP port on 127.0.0.1; 0 picks a free one
	DBFile   string    // its database; empty keeps the messages only while it runs
	Log      io.Writer // its own output; nil discards it

	// With TLSCert and TLSKey (PEM files) its SMTP server requires STARTTLS;
	// with AuthFile (lines user:password) it requires those credentials.
	// Without them it accepts any or no authentication, without TLS.
	TLSCert, TLSKey, AuthFile string

	// AllowedRecipients, a regular expression, makes its SMTP server refuse
	// with 550 5.1.0 every RCPT TO whose address it does not match (a
	// server that refuses an address for good); empty accepts every one.
	AllowedRecipients string
}

// Mailpit is a running Mailpit.
type Mailpit struct {
	UIPort, SMTPPort int
	cmd              *exec.Cmd
	done             chan struct{} // closed when it has exited
	exitErr          error
}

// StartMailpit starts Mailpit on 127.0.0.1 and waits until its API answers.
// It keeps any number of messages (--max 0).
func StartMailpit(ctx context.Context, o MailpitOptions) (*Mailpit, error) {
	bin, err := MailpitBinary(ctx)
	if err != nil {
		return nil, err
	}
	if o.UIPort == 0 {
		if o.UIPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if o.SMTPPort == 0 {
		if o.SMTPPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	cmd := exec.Command(bin, o.args()...)
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches it through us
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start Mailpit: %w", err)
	}
	m := &Mailpit{UIPort: o.UIPort, SMTPPort: o.SMTPPort, cmd: cmd, done: make(chan struct{})}
	go func() { m.exitErr = cmd.Wait(); close(m.done) }()
	if err := m.waitUntilUp(ctx); err != nil {
		_ = m.Stop()
		return nil, err
	}
	return m, nil
}

func (o MailpitOptions) args() []string {
	args := []string{"--listen", fmt.Sprintf("127.0.0.1:%d", o.UIPort), "--smtp", fmt.Sprintf("127.0.0.1:%d", o.SMTPPort),
		"--max", "0", "--smtp-disable-rdns"}
	if o.DBFile != "" {
		args = append(args, "--database", o.DBFile)
	}
	if o.TLSCert != "" {
		args = append(args, "--smtp-tls-cert", o.TLSCert, "--smtp-tls-key", o.TLSKey, "--smtp-require-starttls")
	}
	if o.AllowedRecipients != "" {
		args = append(args, "--smtp-allowed-recipients", o.AllowedRecipients)
	}
	if o.AuthFile != "" {
		return append(args, "--smtp-auth-file", o.AuthFile)
	}
	return append(args, "--smtp-auth-accept-any", "--smtp-auth-allow-insecure")
}

// URL is the address of the web UI; the API is under URL()+"/api/v1".
func (m *Mailpit) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", m.UIPort) }

// SMTPAddress is the host:port its SMTP server listens on.
func (m *Mailpit) SMTPAddress() string { return fmt.Sprintf("127.0.0.1:%d", m.SMTPPort) }

func (m *Mailpit) waitUntilUp(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL()+"/api/v1/info", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.done:
			return fmt.Errorf("start Mailpit: it exited: %v", m.exitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("start Mailpit: its API did not answer within a minute")
}

// Stop ends Mailpit (SIGTERM, then SIGKILL after 10 s) and waits for it;
// stopping it again does nothing.
func (m *Mailpit) Stop() error {
	select {
	case <-m.done:
		return nil
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	return nil
}

// MailAddress is an address as Mailpit's API shows it.
type MailAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// MailMessage is a message as Mailpit's API shows it (a summary from
// Search leaves Text and HTML empty).
type MailMessage struct {
	ID        string        `json:"ID"`
	MessageID string        `json:"MessageID"`
	From      MailAddress   `json:"From"`
	To        []MailAddress `json:"To"`
	Subject   string        `json:"Subject"`
	Text      string        `json:"Text"`
	HTML      string        `json:"HTML"`
}

// Search lists the messages matching a Mailpit search query (for example
// to:ADDRESS), newest first; an empty query lists all (up to 10,000).
func (m *Mailpit) Search(ctx context.Context, query string) ([]MailMessage, error) {
	path := "/api/v1/messages?limit=10000"
	if query != "" {
		path = "/api/v1/search?limit=10000&query=" + url.QueryEscape(query)
	}
	var out struct {
		Messages []MailMessage `json:"messages"`
	}
	err := m.get(ctx, path, &out)
	return out.Messages, err
}

// Message reads one message, with its text.
func (m *Mailpit) Message(ctx context.Context, id string) (MailMessage, error) {
	var msg MailMessage
	err := m.get(ctx, "/api/v1/message/"+url.PathEscape(id), &msg)
	return msg, err
}

func (m *Mailpit) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL()+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("Mailpit API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("Mailpit API %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("Mailpit API %s: %w", path, err)
	}
	return nil
}
