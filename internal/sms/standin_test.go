package sms_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/sms"
)

// The stand-in's key, as the tests configure it.
const (
	testKeyID  = "zikao-test"
	testSecret = "test-secret"
)

// standIn serves a stand-in keeping its messages at path ("" for none)
// until the test ends.
func standIn(t *testing.T, path string) (*sms.StandIn, *httptest.Server) {
	t.Helper()
	g, err := sms.NewStandIn(testKeyID, testSecret, path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		srv.Close()
		_ = g.Close()
	})
	return g, srv
}

func gatewayTo(url string) *sms.Gateway {
	return sms.NewGateway(url, testKeyID, testSecret, sms.DefaultSignName, 5*time.Second)
}

func codeMessage(phone, code string) sms.Message {
	return sms.Message{Phone: phone, TemplateCode: sms.Templates[sms.SignUp].Code, Params: map[string]string{"code": code},
		OutID: uuid.NewString()}
}

// answer is the provider's answer to SendPath.
type answer struct {
	Code  string `json:"Code"`
	BizID string `json:"BizId"`
}

// sendRaw posts body to the stand-in signed with keyID and secret at now;
// edit changes the request before it goes.
func sendRaw(t *testing.T, url, keyID, secret string, body []byte, now time.Time, edit func(*http.Request)) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+sms.SendPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sms.SignRequest(req, keyID, secret, body, now)
	if edit != nil {
		edit(req)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the stand-in answered %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

// body is a SendPath request as the provider takes it.
func body(t *testing.T, phone, templateCode, params, outID string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]string{"PhoneNumbers": phone, "SignName": sms.DefaultSignName, "TemplateCode": templateCode,
		"TemplateParam": params, "OutId": outID})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The stand-in accepts only requests signed with its key, recently, with a
// nonce it has not seen; the client's error for a refused signature is not
// a refusal for good (an operator may fix the settings), and nothing is
// kept.
func TestStandInChecksTheSignature(t *testing.T) {
	g, srv := standIn(t, "")
	const phone = "13900000001"
	if _, err := gatewayTo(srv.URL).Send(context.Background(), codeMessage(phone, "111111")); err != nil {
		t.Fatalf("a well-signed message: %v", err)
	}
	for name, gw := range map[string]*sms.Gateway{
		"wrong secret": sms.NewGateway(srv.URL, testKeyID, "not-the-secret", sms.DefaultSignName, 5*time.Second),
		"wrong key id": sms.NewGateway(srv.URL, "someone-else", testSecret, sms.DefaultSignName, 5*time.Second),
	} {
		id, err := gw.Send(context.Background(), codeMessage(phone, "222222"))
		var refused *sms.RefusedError
		switch {
		case err == nil:
			t.Errorf("%s: accepted as %s", name, id)
		case errors.As(err, &refused):
			t.Errorf("%s: %v is a refusal for good; a signature error may pass once the settings are fixed", name, err)
		}
	}

	b := body(t, phone, sms.Templates[sms.SignUp].Code, `{"code":"333333"}`, uuid.NewString())
	now := time.Now()
	cases := map[string]struct {
		keyID, secret string
		at            time.Time
		edit          func(*http.Request)
		want          string
	}{
		"wrong key id":       {"nobody", testSecret, now, nil, "InvalidAccessKeyId.NotFound"},
		"wrong secret":       {testKeyID, "wrong", now, nil, "SignatureDoesNotMatch"},
		"20 minutes old":     {testKeyID, testSecret, now.Add(-20 * time.Minute), nil, "InvalidTimeStamp.Expired"},
		"20 minutes ahead":   {testKeyID, testSecret, now.Add(20 * time.Minute), nil, "InvalidTimeStamp.Expired"},
		"no signature":       {testKeyID, testSecret, now, func(r *http.Request) { r.Header.Del("X-Sms-Signature") }, "SignatureDoesNotMatch"},
		"no timestamp":       {testKeyID, testSecret, now, func(r *http.Request) { r.Header.Del("X-Sms-Timestamp") }, "InvalidTimeStamp.Expired"},
		"another nonce":      {testKeyID, testSecret, now, func(r *http.Request) { r.Header.Set("X-Sms-Nonce", "abc") }, "SignatureDoesNotMatch"},
		"body changed after": {testKeyID, testSecret, now, tamper, "SignatureDoesNotMatch"},
	}
	for name, c := range cases {
		if a := sendRaw(t, srv.URL, c.keyID, c.secret, b, c.at, c.edit); a.Code != c.want || a.BizID != "" {
			t.Errorf("%s: answered %+v, want %s", name, a, c.want)
		}
	}

	// A request replayed as it was (same nonce, same signature) is refused.
	req, err := http.NewRequest(http.MethodPost, srv.URL+sms.SendPath, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	sms.SignRequest(req, testKeyID, testSecret, b, now)
	if a := do(t, req); a.Code != "OK" {
		t.Fatalf("the original: %+v", a)
	}
	replay, _ := http.NewRequest(http.MethodPost, srv.URL+sms.SendPath, bytes.NewReader(b))
	replay.Header = req.Header.Clone()
	if a := do(t, replay); a.Code != "SignatureNonceUsed" {
		t.Errorf("a replayed request: %+v, want SignatureNonceUsed", a)
	}
	if n := len(g.Messages(phone)); n != 2 {
		t.Errorf("%d messages kept, want the 2 well-signed ones", n)
	}
}

// tamper replaces the body by another after it was signed.
func tamper(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	b = bytes.Replace(b, []byte("333333"), []byte("444444"), 1)
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
}

// A message the provider can never send is answered with a permanent code,
// which the client returns as *RefusedError; nothing is kept.
func TestStandInRefusesBadMessages(t *testing.T) {
	g, srv := standIn(t, "")
	gw := gatewayTo(srv.URL)
	signUp := sms.Templates[sms.SignUp].Code
	cases := map[string]struct {
		m    sms.Message
		sign string
		want string
	}{
		"phone of 12":         {sms.Message{Phone: "12800000000", TemplateCode: signUp, Params: map[string]string{"code": "123456"}}, "", "isv.MOBILE_NUMBER_ILLEGAL"},
		"phone of 10 digits":  {sms.Message{Phone: "1380000000", TemplateCode: signUp, Params: map[string]string{"code": "123456"}}, "", "isv.MOBILE_NUMBER_ILLEGAL"},
		"phone with +86":      {sms.Message{Phone: "+8613800000000", TemplateCode: signUp, Params: map[string]string{"code": "123456"}}, "", "isv.MOBILE_NUMBER_ILLEGAL"},
		"no phone":            {sms.Message{TemplateCode: signUp, Params: map[string]string{"code": "123456"}}, "", "isv.MOBILE_NUMBER_ILLEGAL"},
		"unknown template":    {sms.Message{Phone: "13900000002", TemplateCode: "ZK_NO_SUCH", Params: map[string]string{"code": "123456"}}, "", "isv.SMS_TEMPLATE_ILLEGAL"},
		"a parameter missing": {sms.Message{Phone: "13900000002", TemplateCode: signUp, Params: map[string]string{}}, "", "isv.TEMPLATE_MISSING_PARAMETERS"},
		"a parameter extra":   {sms.Message{Phone: "13900000002", TemplateCode: signUp, Params: map[string]string{"code": "123456", "name": "x"}}, "", "isv.TEMPLATE_MISSING_PARAMETERS"},
		"no signature name":   {sms.Message{Phone: "13900000002", TemplateCode: signUp, Params: map[string]string{"code": "123456"}}, "-", "isv.SMS_SIGNATURE_ILLEGAL"},
	}
	for name, c := range cases {
		c.m.OutID = uuid.NewString()
		client := gw
		if c.sign == "-" {
			client = sms.NewGateway(srv.URL, testKeyID, testSecret, "", 5*time.Second)
		}
		id, err := client.Send(context.Background(), c.m)
		var refused *sms.RefusedError
		if !errors.As(err, &refused) || refused.Code != c.want {
			t.Errorf("%s: id %q, error %v; want *RefusedError %s", name, id, err, c.want)
			continue
		}
		if c.m.Phone != "" && strings.Contains(err.Error(), c.m.Phone) {
			t.Errorf("%s: the error names the number: %v", name, err)
		}
	}
	// TemplateParam that is no JSON object of strings (the client always
	// sends one).
	for _, params := range []string{"not json", `{"code":123456}`, `["123456"]`} {
		b := body(t, "13900000002", signUp, params, uuid.NewString())
		if a := sendRaw(t, srv.URL, testKeyID, testSecret, b, time.Now(), nil); a.Code != "isv.INVALID_JSON_PARAM" {
			t.Errorf("TemplateParam %s: %+v", params, a)
		}
	}
	if msgs := g.Messages(""); len(msgs) != 0 {
		t.Errorf("refused messages were kept: %d", len(msgs))
	}
}

// A message sent again with an OutId the stand-in accepted already (a
// sender that crashed before recording the acceptance) gets the same id
// and is kept once.
func TestStandInKeepsAResentMessageOnce(t *testing.T) {
	g, srv := standIn(t, "")
	gw := gatewayTo(srv.URL)
	const phone = "13900000003"
	m := codeMessage(phone, "555555")
	first, err := gw.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	again, err := gw.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if first == "" || again != first {
		t.Fatalf("resent message: ids %q and %q, want the same", first, again)
	}
	other, err := gw.Send(context.Background(), codeMessage(phone, "555555"))
	if err != nil || other == first {
		t.Fatalf("another message with the same text: %q, %v; want a new id", other, err)
	}
	msgs := g.Messages(phone)
	if len(msgs) != 2 || msgs[1].ID != first || msgs[1].OutID != m.OutID || msgs[0].ID != other {
		t.Fatalf("kept %+v, want the message once and the other one", msgs)
	}
	if msgs[1].Template != m.TemplateCode || msgs[1].Phone != phone || !strings.Contains(msgs[1].Text, "555555") {
		t.Errorf("kept %+v", msgs[1])
	}
}

// listed is a message as GET /api/v1/messages lists it.
type listed struct {
	ID         string    `json:"id"`
	Phone      string    `json:"phone"`
	Text       string    `json:"text"`
	ReceivedAt time.Time `json:"received_at"`
}

func list(t *testing.T, url, phone string) []listed {
	t.Helper()
	resp, err := http.Get(url + "/api/v1/messages?phone=" + phone)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("listing: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var loose struct {
		Messages []map[string]any `json:"messages"`
	}
	if err := json.Unmarshal(raw, &loose); err != nil || loose.Messages == nil {
		t.Fatalf("listing %s: %v", raw, err)
	}
	for _, m := range loose.Messages {
		for _, f := range []string{"id", "phone", "text", "received_at"} {
			if _, ok := m[f].(string); !ok {
				t.Fatalf("a listed message lacks the string %s: %v", f, m)
			}
		}
	}
	var out struct {
		Messages []listed `json:"messages"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// The listing API (by phone, newest first) and the page.
func TestStandInListsMessages(t *testing.T) {
	_, srv := standIn(t, "")
	gw := gatewayTo(srv.URL)
	const a, b = "13900000004", "13900000005"
	if got := list(t, srv.URL, a); len(got) != 0 {
		t.Fatalf("an empty stand-in lists %v", got)
	}
	var ids []string
	for i, m := range []sms.Message{codeMessage(a, "100001"), codeMessage(b, "100002"),
		{Phone: a, TemplateCode: sms.Templates[sms.TicketLookup].Code, Params: map[string]string{"ticket": "010627100003"}, OutID: uuid.NewString()}} {
		id, err := gw.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		ids = append(ids, id)
		time.Sleep(5 * time.Millisecond)
	}
	got := list(t, srv.URL, a)
	if len(got) != 2 || got[0].ID != ids[2] || got[1].ID != ids[0] {
		t.Fatalf("messages of %s: %+v, want the ticket then the code", a, got)
	}
	want := "【湖北自考】您查询的准考证号为010627100003，请妥善保管，报考和考试时都要使用。"
	if got[0].Text != want || got[0].Phone != a {
		t.Errorf("listed %+v, want the text %q", got[0], want)
	}
	if !got[0].ReceivedAt.After(got[1].ReceivedAt) || time.Since(got[1].ReceivedAt) > time.Minute {
		t.Errorf("received_at %s then %s: want newest first, now", got[0].ReceivedAt, got[1].ReceivedAt)
	}
	if all := list(t, srv.URL, ""); len(all) != 3 || all[0].ID != ids[2] || all[1].ID != ids[1] || all[2].ID != ids[0] {
		t.Errorf("every message: %+v", all)
	}
	if none := list(t, srv.URL, "13900000009"); len(none) != 0 {
		t.Errorf("another phone lists %+v", none)
	}

	status, ctype, page := get(t, srv.URL+"/")
	if status != http.StatusOK || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(page, "010627100003") ||
		!strings.Contains(page, "100002") || !strings.Contains(page, b) {
		t.Errorf("the page: %d %s\n%s", status, ctype, page)
	}
	status, _, page = get(t, srv.URL+"/?phone="+b)
	if status != http.StatusOK || !strings.Contains(page, "100002") || strings.Contains(page, "010627100003") {
		t.Errorf("the page for %s: %d\n%s", b, status, page)
	}
	for _, path := range []string{"/nothing", sms.SendPath} {
		if status, _, _ := get(t, srv.URL+path); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
	}
}

// What the stand-in accepted outlives it: reopened on the same file, it
// lists the messages and still knows their OutIds.
func TestStandInKeepsMessagesAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sms", "messages.jsonl")
	const phone = "13900000006"
	g, err := sms.NewStandIn(testKeyID, testSecret, path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	first := codeMessage(phone, "200001")
	firstID, err := gatewayTo(srv.URL).Send(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gatewayTo(srv.URL).Send(context.Background(), codeMessage(phone, "200002")); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	again, srv2 := standIn(t, path)
	got := list(t, srv2.URL, phone)
	if len(got) != 2 || got[1].ID != firstID || !strings.Contains(got[0].Text, "200002") {
		t.Fatalf("after the restart: %+v", got)
	}
	if id, err := gatewayTo(srv2.URL).Send(context.Background(), first); err != nil || id != firstID {
		t.Fatalf("the first message resent after the restart: %q, %v; want %q", id, err, firstID)
	}
	if _, err := gatewayTo(srv2.URL).Send(context.Background(), codeMessage(phone, "200003")); err != nil {
		t.Fatal(err)
	}
	if n := len(again.Messages(phone)); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the file: %v, %v; want mode 0600 (it holds phone numbers and codes)", info, err)
	}
}

// A line cut short (the stand-in killed while writing it: that message was
// never answered OK) is skipped, and the messages accepted after it are
// not lost at the next restart.
func TestStandInSurvivesALineCutShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "messages.jsonl")
	const phone = "13900000007"
	g, srv := standIn(t, path)
	before, err := gatewayTo(srv.URL).Send(context.Background(), codeMessage(phone, "300001"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	_ = g.Close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"id":"cut-short","out_id":"x","phone":"139`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	g2, srv2 := standIn(t, path)
	if got := g2.Messages(phone); len(got) != 1 || got[0].ID != before {
		t.Fatalf("after the cut: %+v", got)
	}
	after, err := gatewayTo(srv2.URL).Send(context.Background(), codeMessage(phone, "300002"))
	if err != nil {
		t.Fatal(err)
	}
	srv2.Close()
	_ = g2.Close()

	g3, _ := standIn(t, path)
	got := g3.Messages(phone)
	if len(got) != 2 || got[0].ID != after || got[1].ID != before {
		t.Fatalf("the message accepted after the cut is lost at the next restart: %+v", got)
	}
}
