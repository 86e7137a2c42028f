package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"zikao/activities"
	"zikao/api"
	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/chsi"
	"zikao/internal/config"
	"zikao/internal/demo"
	"zikao/internal/devstack"
	"zikao/internal/identity"
	"zikao/internal/registrations"
	"zikao/internal/sms"
	"zikao/internal/testenv"
	"zikao/worker"
)

// These tests run the API over HTTP against a real PostgreSQL, a real
// Temporal dev server and a worker polling it, as in production.
var (
	database *sqlx.DB
	temporal client.Client
	server   *api.Server
	base     string
	spec     routers.Router // every response is checked against openapi.json
	// identityService is the identity verification service's stand-in.
	identityService *httptest.Server
	// smsGateway is the SMS provider's stand-in (smsGatewayURL its address),
	// fed by the API's sender and a worker's (sms_test.go).
	smsGateway    *sms.StandIn
	smsGatewayURL string
	// s3 is the object store's server (SeaweedFS), holding every file.
	s3 *devstack.S3
)

// retentionPeriods are those of the tests' worker: short, so that a test
// ages a row past them by hours, not months.
var retentionPeriods = config.Retention{VerificationFiles: time.Hour, Reports: time.Hour, Messages: time.Hour, FileAccesses: 1000 * time.Hour}

const (
	year, sitting = 2027, 1
	taskQueue     = "registrations-test"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(func(db *sqlx.DB, _ string, srv *testsuite.DevServer) int {
		database, temporal = db, srv.Client()
		ctx := context.Background()
		if err := demo.Seed(ctx, db, year, sitting, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		registry := httptest.NewServer(chsi.StandIn("u", "k", demo.Diplomas))
		defer registry.Close()
		var stopS3 func()
		var err error
		if s3, stopS3, err = testenv.S3(ctx); err != nil { // the package's s3
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer stopS3()
		fileStore := testenv.Files(db, s3, "zikao-files")
		w := worker.New(temporal, taskQueue, &activities.Activities{
			Registrations: registrations.NewStore(db),
			Diplomas:      chsi.NewClient(registry.URL, "u", "k", 5*time.Second),
		})
		worker.RegisterRetention(w, &activities.Retention{DB: db, Files: fileStore, Periods: retentionPeriods})
		if err := w.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer w.Stop()
		stopMail, err := startMail(ctx, db) // Mailpit, and the sender delivering the outbox to it (mail_test.go)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mail:", err)
			return 1
		}
		defer stopMail()
		server = api.NewServer(db, temporal, taskQueue, year, sitting)
		server.Registering.Files = fileStore
		stopSMS, err := startSMS(ctx, db) // the SMS gateway's stand-in and the worker's sender (sms_test.go)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sms:", err)
			return 1
		}
		defer stopSMS()
		identityService = httptest.NewServer(identity.StandIn("u", "k")) // the real stand-in, on a free port
		defer identityService.Close()
		server.Registering.Identity = identity.NewClient(identityService.URL, "u", "k", 5*time.Second)
		// Every test client comes from 127.0.0.1: the per-address limits (the
		// same code as the per-login ones, tested in internal/throttle) would
		// add up across tests.
		server.LookupLimits.PerAddress.Max = 10000
		server.StaffLookupLimits.PerAddress.Max = 10000
		server.Accounts.LoginLimits.PerAddress.Max = 10000
		server.Accounts.ResetLimits.PerAddress.Max = 10000
		server.Accounts.SMSLimits.Address.Max = 10000
		h, err := server.Handler(nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		httpServer := httptest.NewServer(h)
		defer httpServer.Close()
		base = httpServer.URL + "/api/v1"
		if spec, err = loadSpec(httpServer.URL); err != nil {
			fmt.Fprintln(os.Stderr, "openapi.json:", err)
			return 1
		}
		return m.Run() // testenv.Main then checks PostgreSQL's log for personal data
	}, true))
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (r response) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func (r response) str(key string) string {
	v, _ := r.body[key].(string)
	return v
}

type caller struct {
	t       testing.TB
	token   string
	headers map[string]string
}

func (c caller) do(method, path string, body io.Reader, contentType string) response {
	c.t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = base + path
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if _, bench := c.t.(*testing.B); !bench {
		// A benchmark measures the server, not this check (the tests
		// make every answer it gets).
		checkAgainstSpec(c.t, req, out)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			c.t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return out
}

func (c caller) json(method, path string, body any) response {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	return c.do(method, path, r, "application/json")
}

// multipart posts fields and one file.
func (c caller) multipart(path string, fields map[string]string, fileField string, file []byte) response {
	c.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	if file != nil {
		fw, _ := w.CreateFormFile(fileField, "upload.bin")
		_, _ = fw.Write(file)
	}
	_ = w.Close()
	return c.do(http.MethodPost, path, &buf, w.FormDataContentType())
}

func want(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.errorCode() != code {
		t.Fatalf("got %d %s, want %d %q", r.status, r.raw, status, code)
	}
	if code != "" {
		e := r.body["error"].(map[string]any)
		if e["message"] == "" || e["message_en"] == "" {
			t.Fatalf("error without messages: %s", r.raw)
		}
	}
}

// newApplicant signs up and logs in a fresh applicant.
func newApplicant(t testing.TB) caller {
	t.Helper()
	c := caller{t: t}
	login := uuid.NewString()[:8] + "@example.com"
	want(t, c.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1", "security_question_id": 1, "security_answer": "王小花"}), 201, "")
	return logIn(t, login, "secret1")
}

func logIn(t testing.TB, login, password string) caller {
	t.Helper()
	r := caller{t: t}.json("POST", "/sessions", map[string]any{"login_name": login, "password": password})
	want(t, r, 201, "")
	return caller{t: t, token: r.str("token")}
}

func staff(t testing.TB, login string) caller { return logIn(t, login, demo.Password) }

// newStaff creates a staff account of a role (and exam area) and logs it in.
func newStaff(t *testing.T, role, area string) caller {
	t.Helper()
	return logIn(t, staffLogin(t, role, area), staffPassword)
}

// staffLogin creates a staff account (password staffPassword) and returns
// its login name.
func staffLogin(t *testing.T, role, area string) string {
	t.Helper()
	login := "s-" + uuid.NewString()[:8] + "@example.com"
	if _, err := accounts.NewStore(database).CreateStaff(context.Background(), login, staffPassword, role, area); err != nil {
		t.Fatal(err)
	}
	return login
}

const staffPassword = "password"

// openWindows opens every exam area's window for the test sitting.
func openWindows(t testing.TB, from, to time.Time) {
	t.Helper()
	cat := catalog.New(database)
	areas, err := cat.ExamAreas(context.Background(), year, sitting)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range areas {
		if err := cat.SetWindow(context.Background(), a.Code, year, sitting, catalog.Window{StartsAt: from, EndsAt: to}); err != nil {
			t.Fatal(err)
		}
	}
}

// Minimal files of each type, recognised by their content.
var (
	pdfFile  = []byte("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
	jpegFile = append([]byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, make([]byte, 64)...)
)

// loadSpec loads and validates the published OpenAPI document, served at url.
func loadSpec(url string) (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = openapi3.Servers{{URL: url}}
	for _, ct := range []string{"application/pdf", "image/jpeg", "image/png"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
	return gorillamux.NewRouter(doc)
}

// checkAgainstSpec fails the test when a documented operation answers with
// a status or a body that openapi.json does not describe.
func checkAgainstSpec(t testing.TB, req *http.Request, r response) {
	t.Helper()
	route, params, err := spec.FindRoute(req)
	if err != nil {
		return // undocumented on purpose (404 and 405 tests); TestOpenAPIDocumentsEveryRoute covers the routes
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 r.status,
		Header:                 r.header,
		Body:                   io.NopCloser(bytes.NewReader(r.raw)),
		Options:                opts,
	})
	if err != nil {
		t.Errorf("%s %s answered %d, not as openapi.json says: %v", req.Method, route.Path, r.status, err)
	}
}
