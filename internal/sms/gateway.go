package sms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Message is one text to send: the template's code and its parameters, as
// the provider takes them, and OutID, zikao's id of the message (the
// outbox row's), which the provider keeps with it: a message sent again
// after a crash carries the same one.
type Message struct {
	Phone        string
	TemplateCode string
	Params       map[string]string
	OutID        string
}

// Provider sends texts.
type Provider interface {
	// Send hands a message to the provider and returns the provider's id of
	// it. An error is *RefusedError when the provider refused the message
	// for good; any other error may pass.
	Send(ctx context.Context, m Message) (providerID string, err error)
}

// RefusedError: the provider refused a message for good (a number it
// cannot reach, a template or parameters it does not accept). Code is the
// provider's, never with the number.
type RefusedError struct{ Code string }

func (e *RefusedError) Error() string { return "the SMS provider refused the message: " + e.Code }

// Gateway is the client of an SMS provider's HTTP API in the style of the
// common Chinese providers (阿里云短信's SendSms: PhoneNumbers, SignName,
// TemplateCode, TemplateParam as a JSON string, OutId; an answer with
// Code "OK" and a BizId): a JSON POST to URL + /v1/sms/send, signed with
// HMAC-SHA256 of the key secret over the key id, a timestamp, a nonce and
// the body's SHA-256 (SignRequest).
type Gateway struct {
	URL          string
	AccessKeyID  string
	AccessSecret string
	SignName     string
	HTTP         *http.Client
}

// NewGateway returns a Gateway whose calls time out after timeout.
func NewGateway(url, keyID, secret, signName string, timeout time.Duration) *Gateway {
	return &Gateway{URL: strings.TrimRight(url, "/"), AccessKeyID: keyID, AccessSecret: secret, SignName: signName,
		HTTP: &http.Client{Timeout: timeout}}
}

// SendPath is where the provider takes messages.
const SendPath = "/v1/sms/send"

// The request and answer of SendPath.
type sendRequest struct {
	PhoneNumbers  string `json:"PhoneNumbers"`
	SignName      string `json:"SignName"`
	TemplateCode  string `json:"TemplateCode"`
	TemplateParam string `json:"TemplateParam"`
	OutID         string `json:"OutId"`
}

type sendAnswer struct {
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	BizID     string `json:"BizId"`
	RequestID string `json:"RequestId"`
}

// The signature's headers.
const (
	headerKeyID     = "X-Sms-Key-Id"
	headerTimestamp = "X-Sms-Timestamp"
	headerNonce     = "X-Sms-Nonce"
	headerSignature = "X-Sms-Signature"
)

// signature is base64(HMAC-SHA256(secret, keyID \n timestamp \n nonce \n hex(SHA-256(body)))).
func signature(secret, keyID, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s\n%s\n%s\n%s", keyID, timestamp, nonce, hex.EncodeToString(sum[:]))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignRequest signs a request whose body is body.
func SignRequest(req *http.Request, keyID, secret string, body []byte, now time.Time) {
	raw := make([]byte, 12)
	_, _ = rand.Read(raw)
	nonce := hex.EncodeToString(raw)
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set(headerKeyID, keyID)
	req.Header.Set(headerTimestamp, ts)
	req.Header.Set(headerNonce, nonce)
	req.Header.Set(headerSignature, signature(secret, keyID, ts, nonce, body))
}

// Send implements Provider.
func (g *Gateway) Send(ctx context.Context, m Message) (string, error) {
	params, err := json.Marshal(m.Params)
	if err != nil {
		return "", fmt.Errorf("encode the parameters of %s: %w", m.TemplateCode, err)
	}
	body, err := json.Marshal(sendRequest{PhoneNumbers: m.Phone, SignName: g.SignName, TemplateCode: m.TemplateCode,
		TemplateParam: string(params), OutID: m.OutID})
	if err != nil {
		return "", fmt.Errorf("encode SMS request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+SendPath, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("make SMS request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	SignRequest(req, g.AccessKeyID, g.AccessSecret, body, time.Now())
	resp, err := g.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("reach the SMS provider: %w", errors.Unwrap(err)) // *url.Error would name the URL only; keep its cause
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var a sendAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &a) != nil {
		return "", fmt.Errorf("SMS provider answered %s", resp.Status)
	}
	switch {
	case a.Code == "OK" && a.BizID != "":
		return a.BizID, nil
	case permanent[a.Code]:
		return "", &RefusedError{Code: a.Code}
	default:
		return "", fmt.Errorf("SMS provider answered %s", a.Code)
	}
}

// permanent are the provider's codes that no retry changes. The others (a
// flow limit, the balance, a bad signature or key while an operator fixes
// the settings, the provider's own trouble) are retried.
var permanent = map[string]bool{
	"isv.INVALID_PARAMETERS":           true,
	"isv.MOBILE_NUMBER_ILLEGAL":        true,
	"isv.MOBILE_COUNT_OVER_LIMIT":      true,
	"isv.TEMPLATE_MISSING_PARAMETERS":  true,
	"isv.TEMPLATE_PARAMS_ILLEGAL":      true,
	"isv.SMS_TEMPLATE_ILLEGAL":         true,
	"isv.SMS_SIGNATURE_ILLEGAL":        true,
	"isv.INVALID_JSON_PARAM":           true,
	"isv.PARAM_LENGTH_LIMIT":           true,
	"isv.BLACK_KEY_CONTROL_LIMIT":      true,
	"isv.SMS_TEST_SIGN_TEMPLATE_LIMIT": true,
}
