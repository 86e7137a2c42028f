package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"zikao/api"
	"zikao/internal/accounts"
	"zikao/internal/demo"
	"zikao/internal/testenv"
)

// The hostile-input test: every route of the router, called as the role
// that reaches its handler, gets hostile variants of a request — NUL bytes,
// invalid UTF-8, control characters, huge and fractional numbers, wrong
// types, huge strings and deep nesting in JSON bodies; the same kinds of
// values in query strings, path parameters, headers and multipart fields.
// No answer may be a 5xx; every refusal has the contract's error body, and
// stores nothing. A route added to the router is covered without a change
// here: its body template comes from openapi.json.

func TestHostileInput(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	relaxThrottles(t)
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.Handler(nil)
	if err != nil {
		t.Fatal(err)
	}
	routes := h.Routes()
	sort.Slice(routes, func(i, j int) bool {
		return routes[i].Path+" "+routes[i].Method < routes[j].Path+" "+routes[j].Method
	})
	probe := signUp(t)
	notes := map[string]int{}
	sent := 0
	for _, rt := range routes {
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			tg := newTarget(t, doc, rt.Method, rt.Path, probe)
			for _, req := range tg.requests() {
				sent++
				if note := tg.send(t, req); note != "" {
					notes[note]++
				}
			}
		})
	}
	t.Logf("%d hostile requests to %d routes", sent, len(routes))
	kinds := make([]string, 0, len(notes))
	for note := range notes {
		kinds = append(kinds, note)
	}
	sort.Strings(kinds)
	for _, note := range kinds {
		t.Logf("%s (%d×)", note, notes[note])
	}
}

// relaxThrottles lifts the attempt limits for the test: hundreds of refused
// requests of one account would otherwise be answered 429 before they reach
// the code under test.
func relaxThrottles(t *testing.T) {
	lookup, staff, logins, resets := server.LookupLimits, server.StaffLookupLimits, server.Accounts.LoginLimits, server.Accounts.ResetLimits
	relax := func(l *accounts.Limits) {
		l.PerPair.Max, l.PerLogin.Max, l.PerAddress.Max = 1<<20, 1<<20, 1<<20
	}
	relax(&server.LookupLimits)
	relax(&server.StaffLookupLimits)
	relax(&server.Accounts.LoginLimits)
	relax(&server.Accounts.ResetLimits)
	t.Cleanup(func() {
		server.LookupLimits, server.StaffLookupLimits, server.Accounts.LoginLimits, server.Accounts.ResetLimits = lookup, staff, logins, resets
	})
}

// signUp creates an applicant account and returns its login name (password secret1).
func signUp(t *testing.T) string {
	t.Helper()
	login := uuid.NewString()[:8] + "@example.com"
	want(t, caller{t: t}.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1",
		"security_question_id": 1, "security_answer": "王小花"}), 201, "")
	return login
}

// rawRequest is a request written byte for byte, so that it can carry what
// http.NewRequest refuses to send: raw NUL bytes, invalid UTF-8, control
// characters.
type rawRequest struct {
	what    string // what is hostile about it
	method  string
	target  string      // the request-target (path and query), sent as is
	header  [][2]string // sent as is; the caller's Authorization is added unless set here
	body    []byte
	chunked bool // the body is sent as is, with Transfer-Encoding: chunked
	// below: net/http itself refuses the request (bytes the request line or
	// a header may not hold, headers over its size limit) with a plain-text
	// 400 or 431, before any handler or middleware runs.
	below bool
}

func (r rawRequest) with(what string, header ...[2]string) rawRequest {
	r.what = what
	r.header = append(append([][2]string{}, r.header...), header...)
	return r
}

func (r rawRequest) has(name string) bool {
	for _, h := range r.header {
		if strings.EqualFold(h[0], name) {
			return true
		}
	}
	return false
}

func (r rawRequest) without(name string) rawRequest {
	var kept [][2]string
	for _, h := range r.header {
		if !strings.EqualFold(h[0], name) {
			kept = append(kept, h)
		}
	}
	r.header = kept
	return r
}

// sendRaw sends a request over a new connection and reads the answer.
func sendRaw(t *testing.T, r rawRequest) response {
	t.Helper()
	host := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/api/v1")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", r.method, r.target, host)
	for _, h := range r.header {
		fmt.Fprintf(&msg, "%s: %s\r\n", h[0], h[1])
	}
	if r.chunked {
		msg.WriteString("Transfer-Encoding: chunked\r\n")
	} else {
		fmt.Fprintf(&msg, "Content-Length: %d\r\n", len(r.body))
	}
	msg.WriteString("\r\n")
	msg.Write(r.body)
	// The server may answer before it has read a large body: write and
	// read at once.
	go func() { _, _ = conn.Write(msg.Bytes()) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: no answer: %v", r.what, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &out.body)
	}
	return out
}

// target is one route, with its parameters filled in and a caller whose
// role reaches its handler.
type target struct {
	method, route string
	path          string // the route with its parameters filled in
	op            *openapi3.Operation
	pathItem      *openapi3.PathItem
	as            caller
	relogin       func() caller // a fresh session of the same account
	// The registration of the path's :id, whose name and ID number make
	// the multipart forms plausible.
	name, idNumber string
}

// The roles tried, in order, to find one that reaches a route's handler.
var roleLogins = []string{"", "applicant", "county0106@example.com", "province@example.com",
	"onsite0106@example.com", "admin@example.com"}

func newTarget(t *testing.T, doc *openapi3.T, method, route, probe string) *target {
	tg := &target{method: method, route: route}
	if tg.pathItem = doc.Paths.Find(openAPIPath(route)); tg.pathItem != nil {
		tg.op = tg.pathItem.GetOperation(method)
	}
	role := tg.reachingRole(t, probe)
	owner := signUp(t)
	switch role {
	case "":
		tg.relogin = func() caller { return caller{t: t} }
	case "applicant":
		tg.relogin = func() caller { return logIn(t, owner, "secret1") }
	default:
		tg.relogin = func() caller { return logIn(t, role, demo.Password) }
	}
	tg.as = tg.relogin()
	values := map[string]string{}
	for _, p := range params(route) {
		values[p] = tg.paramValue(t, p, owner)
	}
	tg.path = fill(route, values)
	return tg
}

// openAPIPath writes a Gin route as openapi.json does: /x/:id as /x/{id}.
func openAPIPath(route string) string {
	for _, p := range params(route) {
		route = strings.Replace(route, ":"+p, "{"+p+"}", 1)
	}
	return route
}

func params(route string) []string {
	var out []string
	for _, seg := range strings.Split(route, "/") {
		if name, ok := strings.CutPrefix(seg, ":"); ok {
			out = append(out, name)
		}
	}
	return out
}

func fill(route string, values map[string]string) string {
	for p, v := range values {
		route = strings.Replace(route, ":"+p, v, 1)
	}
	return route
}

// paramValue is a real value for a path parameter. For a registration id
// it is a registration of owner in exam area 0106 (the demo staff's), so
// that every role that may see it reaches the handler's code: pre-registered
// (专科) for the on-site check, awaiting a report (专升本, not found by the
// diploma check) for every other route.
func (tg *target) paramValue(t *testing.T, name, owner string) string {
	switch name {
	case "id":
		c := logIn(t, owner, "secret1")
		level, status := "zhuanshengben", "awaiting_report"
		if strings.HasSuffix(tg.route, "/onsite-check") {
			level, status = "zhuanke", "pre_registered"
		}
		tg.name, tg.idNumber = "张三", testenv.IDNumber()
		r := c.json("POST", "/registrations", newRegistration(level, tg.idNumber, tg.name))
		want(t, r, 202, "")
		waitFor(t, c, r.str("registration_id"), status)
		return r.str("registration_id")
	case "exam_area_code":
		if strings.HasPrefix(tg.route, "/api/v1/admin/") {
			return "0117" // an area no test registers in: a window moved by a variant moves nobody's registration
		}
		return "0106"
	case "account_id": // a staff account of its own, which variants may change or disable
		a, err := accounts.NewStore(database).AddStaff(context.Background(), uuid.NewString()[:8]+"@example.com", demo.Password, accounts.RoleProvincialReviewer, "")
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(a.ID, 10)
	}
	return "1"
}

// reachingRole is the first role whose request passes authentication and
// the role check: "" (nobody logged in), "applicant" or a staff login.
func (tg *target) reachingRole(t *testing.T, probe string) string {
	values := map[string]string{}
	for _, p := range params(tg.route) {
		values[p] = uuid.NewString()
	}
	req := rawRequest{what: "probe", method: tg.method, target: fill(tg.route, values)}
	if bodyMethod(tg.method) {
		req.header, req.body = [][2]string{{"Content-Type", "application/json"}}, []byte("{}")
	}
	for _, role := range roleLogins {
		r := req
		switch role {
		case "":
		case "applicant":
			r = r.with("probe", [2]string{"Authorization", "Bearer " + logIn(t, probe, "secret1").token})
		default:
			r = r.with("probe", [2]string{"Authorization", "Bearer " + logIn(t, role, demo.Password).token})
		}
		if a := sendRaw(t, r); !(a.status == 401 && a.errorCode() == "unauthenticated") && !(a.status == 403 && a.errorCode() == "forbidden") {
			return role
		}
	}
	t.Fatalf("no role reaches %s %s", tg.method, tg.route)
	return ""
}

func bodyMethod(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

// send sends one hostile request and checks the answer. It returns a note
// on an answer that is allowed but outside the contract's shape (a refusal
// by net/http, a redirect by Gin) or on a known leftover, else "".
func (tg *target) send(t *testing.T, req rawRequest) (note string) {
	t.Helper()
	if !req.has("Authorization") && tg.as.token != "" {
		req.header = append(req.header, [2]string{"Authorization", "Bearer " + tg.as.token})
	}
	before := storedRows(t)
	start := time.Now()
	r := sendRaw(t, req)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("%s: took %s", req.what, took.Round(time.Millisecond))
	}
	switch {
	case r.status >= 500:
		t.Errorf("%s: answered %d %s", req.what, r.status, clip(r.raw))
	case req.below && (r.status == 400 || r.status == 431) && r.body == nil:
		note = "refused by net/http before any handler, in plain text: " + req.what
	case r.status >= 400 && isPageRoute(tg.route):
		if !refusalStatuses[r.status] || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: answered %d %s: not a refusal page", req.what, r.status, clip(r.raw))
		}
	case r.status >= 400:
		if msg := contractError(r); msg != "" {
			t.Errorf("%s: answered %d %s: %s", req.what, r.status, clip(r.raw), msg)
		}
	case tg.op != nil && tg.op.Responses.Value(strconv.Itoa(r.status)) == nil:
		t.Errorf("%s: answered %d %s, not a documented success", req.what, r.status, clip(r.raw))
	}
	if r.status < 300 {
		if tg.as.token != "" {
			tg.as = tg.relogin() // the success may have ended the session
		}
		return note
	}
	for _, table := range storedRows(t).grownSince(before) {
		t.Errorf("%s: answered %d, yet a row was added to %s", req.what, r.status, table)
	}
	return note
}

// The statuses of the contract's refusals (405 for a method a path lacks).
var refusalStatuses = map[int]bool{400: true, 401: true, 403: true, 404: true, 405: true, 409: true, 413: true, 415: true, 422: true, 429: true}

// contractError says what keeps an answer from being one of the contract's
// refusals ("" when nothing does).
func contractError(r response) string {
	if !refusalStatuses[r.status] {
		return "not a status of the contract's refusals"
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || r.body == nil {
		return "not a JSON body"
	}
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		return "no error object"
	}
	for _, k := range []string{"code", "message", "message_en"} {
		if s, _ := e[k].(string); s == "" {
			return "no " + k
		}
	}
	for _, k := range []string{"fields", "fields_en"} {
		if f, ok := e[k]; ok {
			m, ok := f.(map[string]any)
			if !ok {
				return k + " is not an object"
			}
			for _, v := range m {
				if _, ok := v.(string); !ok {
					return k + " holds a non-string"
				}
			}
		}
	}
	return ""
}

func clip(b []byte) string {
	if len(b) > 300 {
		return fmt.Sprintf("%q…", b[:300])
	}
	return fmt.Sprintf("%q", b)
}

// rowCounts counts the rows requests store.
type rowCounts map[string]int

var countedTables = []string{"accounts", "sessions", "registrations", "files", "diploma_reports",
	"decision_reasons", "tickets", "enrolled_records"}

func storedRows(t *testing.T) rowCounts {
	t.Helper()
	out := rowCounts{}
	for _, table := range countedTables {
		var n int
		if err := database.Get(&n, `SELECT count(*) FROM `+table); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// grownSince lists the tables that have more rows than before.
func (c rowCounts) grownSince(before rowCounts) []string {
	var grown []string
	for _, table := range countedTables {
		if c[table] > before[table] {
			grown = append(grown, table)
		}
	}
	return grown
}

// requests are the hostile variants of a request to the target.
func (tg *target) requests() []rawRequest {
	plain := tg.template()
	out := tg.pathVariants(plain)
	out = append(out, tg.queryVariants(plain)...)
	out = append(out, headerVariants(plain)...)
	switch {
	case tg.media("multipart/form-data") != nil:
		for _, v := range multipartVariants(tg.parts()) {
			out = append(out, v.on(plain))
		}
	case bodyMethod(tg.method):
		for _, tmpl := range tg.jsonTemplates() {
			out = append(out, jsonVariants(plain, tmpl)...)
		}
	}
	return out
}

func (tg *target) media(contentType string) *openapi3.MediaType {
	if tg.op == nil || tg.op.RequestBody == nil || tg.op.RequestBody.Value == nil {
		return nil
	}
	return tg.op.RequestBody.Value.Content.Get(contentType)
}

// template is a plausible request to the target: its documented body (a
// multipart form, a JSON object, or none).
func (tg *target) template() rawRequest {
	req := rawRequest{method: tg.method, target: tg.path}
	switch {
	case tg.media("multipart/form-data") != nil:
		req.header = [][2]string{{"Content-Type", "multipart/form-data; boundary=" + boundary}}
		req.body = encodeParts(boundary, tg.parts())
	case bodyMethod(tg.method):
		b, _ := json.Marshal(tg.jsonTemplates()[0])
		req.header, req.body = [][2]string{{"Content-Type", "application/json"}}, b
	}
	return req
}

// jsonTemplates are the documented JSON bodies of the target (its examples,
// or one made from its schema), with fresh ID numbers.
func (tg *target) jsonTemplates() []map[string]any {
	var out []any
	if m := tg.media("application/json"); m != nil {
		names := make([]string, 0, len(m.Examples))
		for name := range m.Examples {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if ex := m.Examples[name]; ex.Value != nil {
				out = append(out, ex.Value.Value)
			}
		}
		if len(out) == 0 && m.Example != nil {
			out = append(out, m.Example)
		}
		if len(out) == 0 && m.Schema != nil {
			out = append(out, fromSchema(m.Schema.Value, 0))
		}
	}
	var objects []map[string]any
	for _, v := range out {
		if obj, ok := deepCopy(v).(map[string]any); ok {
			freshIDNumbers(obj)
			objects = append(objects, obj)
		}
	}
	if len(objects) == 0 {
		objects = append(objects, map[string]any{})
	}
	return objects
}

// fromSchema makes a value that fits a schema, from its examples where it
// has them.
func fromSchema(s *openapi3.Schema, depth int) any {
	switch {
	case s == nil || depth > 5:
		return "x"
	case s.Example != nil:
		return s.Example
	case len(s.Enum) > 0:
		return s.Enum[0]
	case len(s.OneOf) > 0:
		return fromSchema(s.OneOf[0].Value, depth+1)
	case len(s.Properties) > 0 || s.Type.Is(openapi3.TypeObject):
		obj := map[string]any{}
		for name, p := range s.Properties {
			obj[name] = fromSchema(p.Value, depth+1)
		}
		return obj
	case s.Type.Is(openapi3.TypeArray) && s.Items != nil:
		return []any{fromSchema(s.Items.Value, depth+1)}
	case s.Type.Is(openapi3.TypeInteger), s.Type.Is(openapi3.TypeNumber):
		return 1
	case s.Type.Is(openapi3.TypeBoolean):
		return true
	}
	return "x"
}

func deepCopy(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// freshIDNumbers replaces the ID numbers of examples by unused ones, so that
// no accepted request takes an ID number another test uses.
func freshIDNumbers(obj map[string]any) {
	for k, v := range obj {
		switch v := v.(type) {
		case map[string]any:
			freshIDNumbers(v)
		case string:
			if strings.HasSuffix(k, "id_number") {
				obj[k] = testenv.IDNumber()
			}
		}
	}
}

// hostileJSON are raw JSON values put in the place of each value of a
// template, one at a time.
var hostileJSON = []struct{ what, raw string }{
	{"escaped NUL", `"a\u0000b"`},
	{"raw NUL", "\"a\x00b\""},
	{"invalid UTF-8", "\"a\xff\xfeb\""},
	{"truncated UTF-8", "\"\xe4\xb8\""},
	{"UTF-8-encoded surrogate", "\"\xed\xa0\x80\""},
	{"overlong UTF-8", "\"\xc0\xaf\""},
	{"lone surrogate escape", `"\ud800"`},
	{"C0 control", `"a\u0001b"`},
	{"terminal escape sequence", `"\u001b[31mred"`},
	{"raw control character", "\"a\x07b\""},
	{"DEL", `"a\u007fb"`},
	{"C1 control", `"a\u0085b"`},
	{"replacement character", `"\ufffd"`},
	{"line breaks only", `"\r\n\t"`},
	{"int32 overflow", `2147483648`},
	{"int32 underflow", `-2147483649`},
	{"int64 overflow", `9223372036854775808`},
	{"float overflow", `1e400`},
	{"exponent", `1e3`},
	{"negative", `-1`},
	{"fraction", `1.5`},
	{"string for bool", `"true"`},
	{"bool", `true`},
	{"null", `null`},
	{"object", `{"a":"b"}`},
	{"array", `["a"]`},
	{"huge string within the body limit", `"` + strings.Repeat("字", 20000) + `"`},
	{"huge string beyond the body limit", `"` + strings.Repeat("a", 70<<10) + `"`},
}

const marker = "@@hostile@@"

// jsonVariants are the template with each of its values replaced by each
// hostile value, and hostile bodies as a whole.
func jsonVariants(plain rawRequest, tmpl map[string]any) []rawRequest {
	var out []rawRequest
	for _, path := range valuePaths(tmpl, nil) {
		for _, h := range hostileJSON {
			obj := deepCopy(tmpl)
			set(obj, path, marker)
			b, _ := json.Marshal(obj)
			r := plain
			r.what = fmt.Sprintf("JSON %s: %s", strings.Join(path, "."), h.what)
			r.body = bytes.Replace(b, []byte(`"`+marker+`"`), []byte(h.raw), 1)
			out = append(out, r)
		}
	}
	valid, _ := json.Marshal(tmpl)
	utf16LE := []byte{0xff, 0xfe}
	for _, u := range utf16.Encode([]rune(string(valid))) {
		utf16LE = append(utf16LE, byte(u), byte(u>>8))
	}
	manyKeys := map[string]int{}
	for i := 0; len(manyKeys) < 4000; i++ {
		manyKeys["k"+strconv.Itoa(i)] = i
	}
	many, _ := json.Marshal(manyKeys)
	for _, b := range []struct{ what, body string }{
		{"empty", ""},
		{"array at the top level", `[]`},
		{"string at the top level", `"x"`},
		{"number at the top level", `1e400`},
		{"null at the top level", `null`},
		{"truncated", `{"a":`},
		{"two values", string(valid) + string(valid)},
		{"trailing garbage", string(valid) + "xyz"},
		{"byte order mark", "\xef\xbb\xbf" + string(valid)},
		{"UTF-16", string(utf16LE)},
		{"deeply nested arrays", strings.Repeat("[", 60000)},
		{"deeply nested objects", strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)},
		{"raw NUL", "\x00"},
		{"NUL in a key", `{"a\u0000b":1}`},
		{"invalid UTF-8 in a key", "{\"\xff\":1}"},
		{"key repeated with a NUL", `{"kind":"new","kind":"a\u0000b"}`},
		{"4000 keys", string(many)},
		{"beyond the body limit", string(valid) + strings.Repeat(" ", 70<<10)},
	} {
		r := plain
		r.what, r.body = "JSON body: "+b.what, []byte(b.body)
		out = append(out, r)
	}
	r := plain
	r.what, r.chunked, r.body = "JSON body: malformed chunked encoding", true, []byte("zz\r\n{}\r\n0\r\n\r\n")
	return append(out, r)
}

// valuePaths lists the paths to every value of an object, nested ones too.
func valuePaths(v any, prefix []string) [][]string {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out [][]string
	for _, k := range keys {
		p := append(append([]string{}, prefix...), k)
		out = append(out, p)
		out = append(out, valuePaths(obj[k], p)...)
	}
	return out
}

func set(v any, path []string, value any) {
	obj := v.(map[string]any)
	for _, k := range path[:len(path)-1] {
		obj = obj[k].(map[string]any)
	}
	obj[path[len(path)-1]] = value
}

// hostileText are values for query strings and multipart fields.
var hostileText = []struct{ what, s string }{
	{"NUL", "a\x00b"},
	{"invalid UTF-8", "a\xff\xfeb"},
	{"truncated UTF-8", "\xe4\xb8"},
	{"UTF-8-encoded surrogate", "\xed\xa0\x80"},
	{"overlong UTF-8", "\xc0\xaf"},
	{"C0 control", "a\x01b"},
	{"terminal escape sequence", "\x1b[31mred"},
	{"DEL", "a\x7fb"},
	{"C1 control", "a\u0085b"},
	{"replacement character", "\ufffd"},
	{"line breaks only", "\r\n\t"},
	{"huge", strings.Repeat("字", 30000)},
}

// pathVariants put hostile values in the path parameters.
func (tg *target) pathVariants(plain rawRequest) []rawRequest {
	var out []rawRequest
	for _, p := range params(tg.route) {
		for _, v := range []struct {
			what, value string
			below       bool
		}{
			{"%00", "%00", false}, {"NUL in a value", "a%00b", false}, {"invalid UTF-8", "%ff%fe", false},
			{"overlong UTF-8", "%c0%af", false}, {"raw invalid UTF-8", "\xff\xfe", false},
			{"C0 control", "%01", false}, {"DEL", "%7f", false}, {"right-to-left override", "%e2%80%ae", false},
			{"10 KiB", strings.Repeat("a", 10<<10), false}, {"dot-dot", "..", false}, {"escaped dot-dot", "%2e%2e", false},
			{"escaped slash", "%2F", false}, {"space", "a%20b", false}, {"Chinese", "%e6%b3%a8%e5%86%8c", false},
			{"negative", "-1", false}, {"huge number", "99999999999999999999", false},
			{"bad %-escape", "%zz", true}, {"lone %", "%", true}, {"raw NUL", "a\x00b", true}, {"raw control", "a\x01b", true},
		} {
			r := plain
			r.what, r.below = fmt.Sprintf("path :%s %s", p, v.what), v.below
			r.target = fill(tg.route, map[string]string{p: v.value})
			for _, other := range params(tg.route) {
				if other != p {
					r.target = strings.Replace(r.target, ":"+other, pathValue(tg, other), 1)
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// pathValue is the target's own value of a parameter.
func pathValue(tg *target, name string) string {
	routeSegs, pathSegs := strings.Split(tg.route, "/"), strings.Split(tg.path, "/")
	for i, seg := range routeSegs {
		if seg == ":"+name && i < len(pathSegs) {
			return pathSegs[i]
		}
	}
	return "1"
}

// queryVariants put hostile values and names in the query string, under the
// target's documented query parameters and an unknown one.
func (tg *target) queryVariants(plain rawRequest) []rawRequest {
	names := []string{"x"}
	var ps openapi3.Parameters
	if tg.pathItem != nil {
		ps = append(ps, tg.pathItem.Parameters...)
	}
	if tg.op != nil {
		ps = append(ps, tg.op.Parameters...)
	}
	for _, p := range ps {
		if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
			names = append(names, p.Value.Name)
		}
	}
	var out []rawRequest
	add := func(what, query string, below bool) {
		r := plain
		r.what, r.target, r.below = "query "+what, tg.path+"?"+query, below
		out = append(out, r)
	}
	for _, name := range names {
		for _, v := range []struct{ what, value string }{
			{"%00", "%00"}, {"NUL in a value", "a%00b"}, {"invalid UTF-8", "%ff%fe"}, {"overlong UTF-8", "%c0%af"},
			{"UTF-8-encoded surrogate", "%ed%a0%80"}, {"truncated UTF-8", "%e4%b8"}, {"raw invalid UTF-8", "\xff\xfe"},
			{"C0 control", "%01"}, {"terminal escape", "%1b%5b31m"}, {"DEL", "%7f"}, {"C1 control", "%c2%85"},
			{"replacement character", "%ef%bf%bd"}, {"bad %-escape", "%zz"}, {"lone %", "%"},
			{"8 KiB", strings.Repeat("a", 8<<10)}, {"repeated", "a&" + name + "=%00"},
		} {
			add(name+"="+v.what, name+"="+v.value, false)
		}
	}
	for _, q := range []struct{ what, query string }{
		{"name %00", "%00=1"}, {"name with a bad %-escape", "%zz=1"}, {"raw invalid UTF-8 name", "\xff=1"},
		{"only separators", "&&&==&"}, {"semicolons", "a=1;b=2"},
	} {
		add(q.what, q.query, false)
	}
	for _, q := range []struct{ what, query string }{
		{"raw NUL", "x=a\x00b"}, {"raw control character", "x=a\x01b"}, {"raw DEL", "x=a\x7fb"}, {"raw space", "x=a b"},
	} {
		add(q.what, q.query, true)
	}
	return out
}

// headerVariants give the template odd Idempotency-Key, Authorization and
// Content-Type headers.
func headerVariants(plain rawRequest) []rawRequest {
	var out []rawRequest
	for _, v := range []struct {
		what, value string
		below       bool
	}{
		{"empty", "", false}, {"spaces", "   ", false}, {"101 characters", strings.Repeat("k", 101), false},
		{"Cyrillic", "ключ", false}, {"invalid UTF-8", "\xff\xfe", false}, {"tab", "a\tb", false},
		{"replacement character", "\ufffd", false},
		{"NUL", "a\x00b", true}, {"control character", "a\x01b", true}, {"DEL", "a\x7fb", true}, {"bare CR", "a\rb", true},
		{"2 MiB", strings.Repeat("k", 2<<20), true},
	} {
		r := plain.with("Idempotency-Key "+v.what, [2]string{"Idempotency-Key", v.value})
		r.below = v.below
		out = append(out, r)
	}
	out = append(out, plain.with("two Idempotency-Keys", [2]string{"Idempotency-Key", "k1"}, [2]string{"Idempotency-Key", "a\xffb"}))
	for _, v := range []struct {
		what, value string
		below       bool
	}{
		{"no token", "Bearer", false}, {"empty token", "Bearer ", false}, {"invalid UTF-8 token", "Bearer \xff\xfe", false},
		{"Basic", "Basic dXNlcjpwYXNz", false}, {"8 KiB token", "Bearer " + strings.Repeat("a", 8<<10), false},
		{"spaces in the token", "Bearer a b c", false}, {"replacement character", "Bearer \ufffd", false},
		{"NUL", "Bearer a\x00b", true}, {"control character", "Bearer a\x01b", true},
	} {
		r := plain.with("Authorization "+v.what, [2]string{"Authorization", v.value})
		r.below = v.below
		out = append(out, r)
	}
	for _, v := range []struct {
		what, value string
		body        string
	}{
		{"none", "", ""}, {"text/plain", "text/plain", ""}, {"form", "application/x-www-form-urlencoded", "a=%00&b=%zz&c=\xff"},
		{"JSON in UTF-16", "application/json; charset=utf-16", ""}, {"multipart without boundary", "multipart/form-data", ""},
		{"multipart with an empty boundary", "multipart/form-data; boundary=", ""},
		{"multipart with a quoted empty boundary", `multipart/form-data; boundary=""`, ""},
		{"multipart with an 80-character boundary", "multipart/form-data; boundary=" + strings.Repeat("b", 80), ""},
		{"multipart/mixed", "multipart/mixed; boundary=" + boundary, ""},
		{"invalid UTF-8", "\xff\xfe", ""}, {"only separators", ";;;=", ""},
		{"invalid UTF-8 parameter", "application/json; charset=\"\xff\"", ""},
	} {
		r := plain.without("Content-Type")
		if v.value != "" {
			r = r.with("Content-Type "+v.what, [2]string{"Content-Type", v.value})
		}
		r.what = "Content-Type " + v.what
		if v.body != "" {
			r.body = []byte(v.body)
		}
		out = append(out, r)
	}
	return out
}

const boundary = "hostile-boundary"

// part is one part of a multipart form.
type part struct {
	name, filename string
	header         string // extra header lines, each ending in \r\n
	data           []byte
}

// parts is the documented multipart form of the target: a JPEG for each
// file (every upload accepts JPEG), the registration's name and ID number,
// a verification code, examples or plausible values for the rest.
func (tg *target) parts() []part {
	known := map[string]string{"verification_code": "ABCD1234EFGH", "name": tg.name, "id_card_number": tg.idNumber}
	s := tg.media("multipart/form-data").Schema.Value
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []part
	for _, name := range names {
		p := s.Properties[name].Value
		switch {
		case p.Format == "binary":
			out = append(out, part{name: name, filename: "upload.jpg", data: jpegFile})
		case known[name] != "":
			out = append(out, part{name: name, data: []byte(known[name])})
		default:
			out = append(out, part{name: name, data: []byte(fmt.Sprint(fromSchema(p, 0)))})
		}
	}
	return out
}

func encodeParts(boundary string, parts []part) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		fmt.Fprintf(&b, "--%s\r\nContent-Disposition: form-data; name=\"%s\"", boundary, p.name)
		if p.filename != "" {
			fmt.Fprintf(&b, "; filename=\"%s\"\r\nContent-Type: application/octet-stream", p.filename)
		}
		fmt.Fprintf(&b, "\r\n%s\r\n", p.header)
		b.Write(p.data)
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}

// multipartVariant is a hostile multipart body.
type multipartVariant struct {
	what string
	body []byte
}

func (v multipartVariant) on(plain rawRequest) rawRequest {
	plain.what, plain.body = "multipart "+v.what, v.body
	return plain
}

// multipartVariants put hostile values in each field, file and part header,
// and break the form as a whole.
func multipartVariants(tmpl []part) []multipartVariant {
	var out []multipartVariant
	add := func(what string, parts []part) {
		out = append(out, multipartVariant{what, encodeParts(boundary, parts)})
	}
	changed := func(i int, change func(*part)) []part {
		ps := append([]part{}, tmpl...)
		change(&ps[i])
		return ps
	}
	for i, p := range tmpl {
		if p.filename == "" {
			for _, h := range hostileText {
				add(p.name+": "+h.what, changed(i, func(p *part) { p.data = []byte(h.s) }))
			}
			add(p.name+": 2 MiB", changed(i, func(p *part) { p.data = bytes.Repeat([]byte("a"), 2<<20) }))
			add(p.name+": beyond the body limit", changed(i, func(p *part) { p.data = bytes.Repeat([]byte("a"), 6<<20) }))
			add(p.name+": as a file", changed(i, func(p *part) { p.filename = "x.txt" }))
			add(p.name+": twice, then with a NUL", append(append([]part{}, tmpl...), part{name: p.name, data: []byte("a\x00b")}))
			continue
		}
		add(p.name+": as a field", changed(i, func(p *part) { p.filename = "" }))
		add(p.name+": empty", changed(i, func(p *part) { p.data = nil }))
		add(p.name+": text", changed(i, func(p *part) { p.data = []byte("plain text\x00\xff") }))
		add(p.name+": beyond the file limit", changed(i, func(p *part) { p.data = append(append([]byte{}, jpegFile...), make([]byte, 5<<20)...) }))
		for _, name := range []string{"a\x00b.jpg", "\xff\xfe.jpg", "../../etc/passwd", strings.Repeat("n", 10<<10)} {
			add(p.name+": file name "+clip([]byte(name[:min(len(name), 20)])), changed(i, func(p *part) { p.filename = name }))
		}
	}
	for _, name := range []string{"a\x00b", "\xff\xfe", strings.Repeat("n", 10<<10)} {
		add("field name "+clip([]byte(name[:min(len(name), 20)])), append(append([]part{}, tmpl...), part{name: name, data: []byte("x")}))
	}
	add("part header with a NUL", changed(0, func(p *part) { p.header = "X-Odd: a\x00b\r\n" }))
	add("part header with invalid UTF-8", changed(0, func(p *part) { p.header = "Content-Type: \xff\xfe\r\n" }))
	many := append([]part{}, tmpl...)
	for i := 0; i < 2000; i++ {
		many = append(many, part{name: "p" + strconv.Itoa(i), data: []byte("x")})
	}
	add("2000 parts", many)
	whole := encodeParts(boundary, tmpl)
	out = append(out,
		multipartVariant{"truncated", whole[:len(whole)/2]},
		multipartVariant{"without its closing boundary", bytes.TrimSuffix(whole, []byte("--"+boundary+"--\r\n"))},
		multipartVariant{"another boundary", encodeParts("other-boundary", tmpl)},
		multipartVariant{"empty", nil},
		multipartVariant{"closing boundary only", []byte("--" + boundary + "--\r\n")},
		multipartVariant{"part without Content-Disposition", []byte("--" + boundary + "\r\nX-A: b\r\n\r\nx\r\n--" + boundary + "--\r\n")},
		multipartVariant{"JSON", []byte(`{"a":"\u0000"}`)},
	)
	return out
}
