package sms

import (
	"bufio"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Received is a message the stand-in accepted: ID is its BizId.
type Received struct {
	ID         string    `json:"id"`
	OutID      string    `json:"out_id"`
	Phone      string    `json:"phone"`
	Template   string    `json:"template_code"`
	Text       string    `json:"text"`
	ReceivedAt time.Time `json:"received_at"`
}

// StandIn is a stand-in of the SMS provider for development and tests. It
// takes SendPath as the provider does (signature, template, parameters),
// renders the text from Templates, and keeps every message it accepted,
// one JSON line each in a file (written and synced before it answers), so
// that a restart loses nothing. A message sent again with an OutId it has
// already accepted is answered with the same BizId and not kept twice.
// GET /api/v1/messages?phone=… lists them, newest first; GET / shows them
// to a person.
type StandIn struct {
	keyID, secret string

	mu     sync.Mutex
	file   *os.File
	msgs   []Received
	byOut  map[string]string // OutId → BizId
	nonces map[string]time.Time
}

// NewStandIn opens (or creates) the stand-in's file, at path, and reads
// what it kept. An empty path keeps nothing across restarts.
func NewStandIn(keyID, secret, path string) (*StandIn, error) {
	s := &StandIn{keyID: keyID, secret: secret, byOut: map[string]string{}, nonces: map[string]time.Time{}}
	if path == "" {
		return s, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("SMS stand-in: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("SMS stand-in: open its messages: %w", err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m Received
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue // a line cut short by a crash: that message was never answered OK
		}
		s.msgs = append(s.msgs, m)
		s.byOut[m.OutID] = m.ID
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("SMS stand-in: read its messages: %w", err)
	}
	if err := endLine(f); err != nil { // else the next message would be appended to a line cut short, and lost with it
		f.Close()
		return nil, fmt.Errorf("SMS stand-in: end a line cut short: %w", err)
	}
	s.file = f
	return s, nil
}

// endLine ends the file's last line when a crash cut it short.
func endLine(f *os.File) error {
	info, err := f.Stat()
	if err != nil || info.Size() == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, info.Size()-1); err != nil || last[0] == '\n' {
		return err
	}
	_, err = f.Write([]byte{'\n'})
	return err
}

// Close closes the stand-in's file.
func (s *StandIn) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	return s.file.Close()
}

// Messages lists what the stand-in accepted for phone ("" for every phone),
// newest first.
func (s *StandIn) Messages(phone string) []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Received{}
	for _, m := range slices.Backward(s.msgs) {
		if phone == "" || m.Phone == phone {
			out = append(out, m)
		}
	}
	return out
}

// ServeHTTP implements http.Handler.
func (s *StandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == SendPath:
		s.send(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/messages":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"messages": s.Messages(r.URL.Query().Get("phone"))})
	case r.Method == http.MethodGet && r.URL.Path == "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]any{"Phone": r.URL.Query().Get("phone"), "Messages": s.Messages(r.URL.Query().Get("phone"))})
	default:
		http.NotFound(w, r)
	}
}

var phonePattern = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

// ValidPhone reports whether p is a mainland mobile number (11 digits from
// 13–19): the one rule of what zikao accepts and texts.
func ValidPhone(p string) bool { return phonePattern.MatchString(p) }

func (s *StandIn) send(w http.ResponseWriter, r *http.Request) {
	answer := func(code, msg, bizID string) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sendAnswer{Code: code, Message: msg, BizID: bizID, RequestID: uuid.NewString()})
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if code := s.checkSignature(r, body, time.Now()); code != "" {
		answer(code, "signature not accepted", "")
		return
	}
	var req sendRequest
	if json.Unmarshal(body, &req) != nil {
		answer("isv.INVALID_PARAMETERS", "body is not JSON", "")
		return
	}
	var params map[string]string
	tpl, known := TemplateByCode(req.TemplateCode)
	switch {
	case !ValidPhone(req.PhoneNumbers):
		answer("isv.MOBILE_NUMBER_ILLEGAL", "not a mobile number", "")
		return
	case req.SignName == "":
		answer("isv.SMS_SIGNATURE_ILLEGAL", "no signature", "")
		return
	case !known:
		answer("isv.SMS_TEMPLATE_ILLEGAL", "unknown template", "")
		return
	case json.Unmarshal([]byte(req.TemplateParam), &params) != nil:
		answer("isv.INVALID_JSON_PARAM", "TemplateParam is not a JSON object of strings", "")
		return
	}
	text, err := tpl.Render(req.SignName, params)
	if err != nil {
		answer("isv.TEMPLATE_MISSING_PARAMETERS", "parameters do not fit the template", "")
		return
	}
	id, err := s.keep(Received{OutID: req.OutID, Phone: req.PhoneNumbers, Template: req.TemplateCode, Text: text})
	if err != nil {
		http.Error(w, "cannot keep the message", http.StatusInternalServerError)
		return
	}
	answer("OK", "OK", id)
}

// keep stores m unless its OutId was accepted already, and returns its BizId.
func (s *StandIn) keep(m Received) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.byOut[m.OutID]; ok && m.OutID != "" {
		return id, nil
	}
	m.ID, m.ReceivedAt = uuid.NewString(), time.Now().UTC()
	if s.file != nil {
		line, err := json.Marshal(m)
		if err != nil {
			return "", err
		}
		if _, err := s.file.Write(append(line, '\n')); err != nil {
			return "", err
		}
		if err := s.file.Sync(); err != nil {
			return "", err
		}
	}
	s.msgs = append(s.msgs, m)
	if m.OutID != "" {
		s.byOut[m.OutID] = m.ID
	}
	return m.ID, nil
}

// checkSignature answers "" for a request signed with the stand-in's key
// within 15 minutes of now with a nonce not seen in that time, else the
// provider's error code.
func (s *StandIn) checkSignature(r *http.Request, body []byte, now time.Time) string {
	keyID, ts, nonce := r.Header.Get(headerKeyID), r.Header.Get(headerTimestamp), r.Header.Get(headerNonce)
	if keyID != s.keyID {
		return "InvalidAccessKeyId.NotFound"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 15*time.Minute {
		return "InvalidTimeStamp.Expired"
	}
	if !hmac.Equal([]byte(r.Header.Get(headerSignature)), []byte(signature(s.secret, keyID, ts, nonce, body))) {
		return "SignatureDoesNotMatch"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, at := range s.nonces {
		if now.Sub(at) > 15*time.Minute {
			delete(s.nonces, n)
		}
	}
	if _, seen := s.nonces[nonce]; seen || nonce == "" {
		return "SignatureNonceUsed"
	}
	s.nonces[nonce] = now
	return ""
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>短信网关（开发替身）</title>
<style>body{font-family:sans-serif;margin:1rem;max-width:60rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ccc;padding:.4rem;text-align:left;vertical-align:top}</style>
</head><body>
<h1>短信网关（开发替身）</h1>
<p>The SMS gateway stand-in: every text zikao asked it to send, newest first. Reload to see new ones.</p>
<form method="get"><label>手机号码 <input name="phone" value="{{.Phone}}" inputmode="numeric"></label> <button>筛选</button></form>
<table><thead><tr><th>时间 (UTC)</th><th>手机号码</th><th>短信内容</th></tr></thead><tbody>
{{range .Messages}}<tr><td>{{.ReceivedAt.Format "2006-01-02 15:04:05"}}</td><td>{{.Phone}}</td><td>{{.Text}}</td></tr>
{{else}}<tr><td colspan="3">还没有短信 / no messages yet</td></tr>{{end}}
</tbody></table></body></html>
`))
