package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/testsuite"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/chsi"
	"zikao/internal/db"
	"zikao/internal/demo"
	"zikao/internal/devstack"
	"zikao/internal/enrolled"
	"zikao/internal/files"
	"zikao/workflows"
)

// Extra staff of the second exam area and of the area registrations are
// only moved to (password demo.Password), beside the demo ones of 0106:
// a county office and a desk in each of staffAreas.
var extraStaff = []demo.Staff{
	{LoginName: "county0102@example.com", Role: accounts.RoleCountyReviewer, Area: "0102"},
	{LoginName: "onsite0102@example.com", Role: accounts.RoleOnsiteOperator, Area: "0102"},
	{LoginName: "county0103@example.com", Role: accounts.RoleCountyReviewer, Area: "0103"},
	{LoginName: "onsite0103@example.com", Role: accounts.RoleOnsiteOperator, Area: "0103"},
}

// movedWindow is the confirmation window of 0103, the area registrations
// are only moved to: another than the other areas' (yesterday to 30 days
// on), so that a moved registration shows whose window it took.
func movedWindow(now time.Time) catalog.Window {
	return catalog.Window{StartsAt: now.Add(-2 * time.Hour).Truncate(time.Hour), EndsAt: now.AddDate(0, 0, 20).Truncate(time.Hour)}
}

// stack is the system under test, every part on 127.0.0.1: PostgreSQL,
// the Temporal dev server (SQLite file), Mailpit, the registry and SMS
// gateway stand-ins (in this process), and the identity service stand-in,
// the API and two workers as processes of the zikao binary.
type stack struct {
	dir    string
	events *eventLog

	pg       *devstack.Postgres
	pgDir    string
	keepPG   bool     // keep the cluster for inspection (an invariant failed)
	db       *sqlx.DB // the harness's own connection: seeding and checks
	temporal *testsuite.DevServer
	tOpts    devstack.TemporalOptions
	tLog     *os.File
	registry *http.Server
	mailpit  *devstack.Mailpit // the SMTP server the workers deliver to
	identity *proc             // the identity verification service stand-in (zikao identity-service)
	idAddr   string            // where it listens
	sms      *smsGateway       // the SMS provider's stand-in (in this process) the senders deliver to
	s3       *devstack.S3      // the object store's server (SeaweedFS) holding the files
	s3Log    *os.File

	apiAddr string
	api     *proc
	workers []*proc
}

// startStack starts every part and loads the demo data and the plans'
// enrolment records. On error it stops what it started.
func startStack(ctx context.Context, o Options, plans []*plan, events *eventLog) (s *stack, err error) {
	s = &stack{dir: o.Dir, events: events}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if err := s.startPostgres(ctx); err != nil {
		return s, err
	}
	if err := s.seed(ctx, o, plans); err != nil {
		return s, err
	}
	if err := s.startTemporal(ctx); err != nil {
		return s, err
	}
	registryURL, err := s.startRegistry(o, plans)
	if err != nil {
		return s, err
	}
	if s.mailpit, err = devstack.StartMailpit(ctx, devstack.MailpitOptions{}); err != nil {
		return s, err
	}
	s.events.add("Mailpit on %s (SMTP %s)", s.mailpit.URL(), s.mailpit.SMTPAddress())
	if s.sms, err = startSMSGateway(s.dir, o.SMSKeyID, o.SMSSecret); err != nil {
		return s, err
	}
	s.events.add("SMS gateway stand-in on %s (messages kept in %s)", s.sms.URL(), s.sms.file)
	if err := s.startIdentity(ctx, o); err != nil {
		return s, err
	}
	if err := s.startS3(ctx); err != nil {
		return s, err
	}
	if err := s.startProcesses(ctx, o, registryURL); err != nil {
		return s, err
	}
	return s, nil
}

// s3Bucket is the bucket of the run's files.
const s3Bucket = "zikao-chaos"

// startS3 starts the object store's server, its data and log in the run
// folder.
func (s *stack) startS3(ctx context.Context) (err error) {
	if s.s3Log, err = os.Create(filepath.Join(s.dir, "s3.log")); err != nil {
		return err
	}
	if s.s3, err = devstack.StartS3(ctx, devstack.S3Options{Dir: filepath.Join(s.dir, "s3"), Log: s.s3Log}); err != nil {
		return err
	}
	s.events.add("SeaweedFS (S3) on %s, bucket %s", s.s3.Endpoint(), s3Bucket)
	return nil
}

// startPostgres starts a cluster in a temporary folder of its own (as root,
// the user postgres must own it, and could not enter a run folder below a
// folder only root may enter); its log is copied to the run folder at the
// end.
func (s *stack) startPostgres(ctx context.Context) error {
	port, err := devstack.FreePort()
	if err != nil {
		return err
	}
	pgDir, err := os.MkdirTemp("", "zikao-chaos-pg-")
	if err != nil {
		return err
	}
	s.pgDir = pgDir
	if s.pg, err = devstack.StartPostgres(ctx, pgDir, port, "zikao"); err != nil {
		return err
	}
	if s.db, err = db.Open(ctx, s.pg.URL("zikao")); err != nil {
		return err
	}
	s.events.add("PostgreSQL on 127.0.0.1:%d (cluster in %s, log copied to the run folder at the end)", port, pgDir)
	return nil
}

// seed applies the migrations and loads the demo data, staff of the other
// exam areas, 0103's own window, and the generated enrolment records.
func (s *stack) seed(ctx context.Context, o Options, plans []*plan) error {
	if _, err := db.Migrate(ctx, s.db); err != nil {
		return err
	}
	if err := demo.Seed(ctx, s.db, o.Year, o.Sitting, time.Now()); err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	for _, st := range extraStaff {
		if _, err := accounts.NewStore(s.db).CreateStaff(ctx, st.LoginName, demo.Password, st.Role, st.Area); err != nil {
			return fmt.Errorf("staff %s: %w", st.LoginName, err)
		}
	}
	if err := catalog.New(s.db).SetWindow(ctx, "0103", o.Year, o.Sitting, movedWindow(time.Now())); err != nil {
		return err
	}
	csvData, rows := enrolmentsCSV(plans)
	if err := os.WriteFile(filepath.Join(s.dir, "enrolled.csv"), csvData, 0o600); err != nil {
		return err
	}
	res, err := enrolled.NewStore(s.db).Import(ctx, bytes.NewReader(csvData))
	if err != nil {
		return fmt.Errorf("import enrolment records: %w", err)
	}
	s.events.add("demo data loaded; %d of %d generated enrolment records imported", res.Added, rows)
	return nil
}

func (s *stack) startTemporal(ctx context.Context) error {
	port, err := devstack.FreePort()
	if err != nil {
		return err
	}
	if s.tLog, err = os.OpenFile(filepath.Join(s.dir, "temporal.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
		return err
	}
	s.tOpts = devstack.TemporalOptions{Port: port, DBFile: filepath.Join(s.dir, "temporal.db"), Namespace: "default",
		SearchAttributes: workflows.SearchAttributes(), Log: s.tLog}
	if s.temporal, err = devstack.StartTemporal(ctx, s.tOpts); err != nil {
		return err
	}
	s.events.add("Temporal dev server on %s (file %s)", s.temporal.FrontendHostPort(), s.tOpts.DBFile)
	return nil
}

// startRegistry serves the diploma registry stand-in in this process,
// knowing the demo diploma and those of the "found" plans.
func (s *stack) startRegistry(o Options, plans []*plan) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	known := knownDiplomas(demo.Diplomas, plans)
	s.registry = &http.Server{Handler: chsi.StandIn(o.RegistryUser, o.RegistryKey, known), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.registry.Serve(l) }()
	url := "http://" + l.Addr().String()
	s.events.add("diploma registry stand-in on %s (%d known diplomas)", url, len(known))
	return url, nil
}

// startIdentity starts the identity verification service stand-in as a
// process of its own (so that a fault can stop it), and waits until it
// takes connections.
func (s *stack) startIdentity(ctx context.Context, o Options) error {
	port, err := devstack.FreePort()
	if err != nil {
		return err
	}
	s.idAddr = fmt.Sprintf("127.0.0.1:%d", port)
	env := childEnv(map[string]string{"ZIKAO_IDENTITY_SERVICE_USER": o.IdentityUser, "ZIKAO_IDENTITY_SERVICE_KEY": o.IdentityKey})
	s.identity = &proc{name: "identity-service", bin: o.Binary, args: []string{"identity-service", "-listen", s.idAddr}, env: env,
		logPath: filepath.Join(s.dir, "identity-service.log"), events: s.events}
	if err := s.identity.Start(); err != nil {
		return err
	}
	if err := s.waitIdentity(ctx, time.Minute); err != nil {
		return err
	}
	s.events.add("identity service stand-in on http://%s (pid %d)", s.idAddr, s.identity.Pid())
	return nil
}

// waitIdentity waits until the identity service stand-in takes connections.
func (s *stack) waitIdentity(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", s.idAddr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the identity service stand-in at %s did not listen within %s (see %s)", s.idAddr, limit,
				filepath.Join(s.dir, "identity-service.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startProcesses starts two workers and the API, and waits for the API.
func (s *stack) startProcesses(ctx context.Context, o Options, registryURL string) error {
	port, err := devstack.FreePort()
	if err != nil {
		return err
	}
	s.apiAddr = fmt.Sprintf("127.0.0.1:%d", port)
	env := childEnv(map[string]string{
		"ZIKAO_DATABASE_URL":          s.pg.URL("zikao"),
		"TEMPORAL_ADDRESS":            s.temporal.FrontendHostPort(),
		"TEMPORAL_NAMESPACE":          "default",
		"ZIKAO_LISTEN_ADDRESS":        s.apiAddr,
		"ZIKAO_DIPLOMA_REGISTRY_URL":  registryURL,
		"ZIKAO_DIPLOMA_REGISTRY_USER": o.RegistryUser,
		"ZIKAO_DIPLOMA_REGISTRY_KEY":  o.RegistryKey,
		"ZIKAO_IDENTITY_SERVICE_URL":  "http://" + s.idAddr,
		"ZIKAO_IDENTITY_SERVICE_USER": o.IdentityUser,
		"ZIKAO_IDENTITY_SERVICE_KEY":  o.IdentityKey,
		"ZIKAO_YEAR":                  strconv.Itoa(o.Year),
		"ZIKAO_SITTING":               strconv.Itoa(o.Sitting),
		"ZIKAO_SMTP_ADDRESS":          s.mailpit.SMTPAddress(), // the run's own Mailpit
		"ZIKAO_SMS_URL":               s.sms.URL(),             // and SMS gateway stand-in
		"ZIKAO_SMS_ACCESS_KEY_ID":     o.SMSKeyID,
		"ZIKAO_SMS_ACCESS_KEY_SECRET": o.SMSSecret,
		"ZIKAO_S3_ENDPOINT":           s.s3.Endpoint(), // the run's own SeaweedFS
		"ZIKAO_S3_BUCKET":             s3Bucket,
		"ZIKAO_S3_ACCESS_KEY":         s.s3.AccessKey,
		"ZIKAO_S3_SECRET_KEY":         s.s3.SecretKey,
		"ZIKAO_FILE_KEYS":             files.DevKeys,
	})
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("worker-%d", i)
		metricsPort, err := devstack.FreePort() // each worker serves its metrics on a port of its own
		if err != nil {
			return err
		}
		workerEnv := append(append([]string(nil), env...), fmt.Sprintf("ZIKAO_WORKER_METRICS_ADDRESS=127.0.0.1:%d", metricsPort))
		s.workers = append(s.workers, &proc{name: name, bin: o.Binary, args: []string{"worker"}, env: workerEnv,
			logPath: filepath.Join(s.dir, name+".log"), events: s.events})
	}
	s.api = &proc{name: "api", bin: o.Binary, args: []string{"api"}, env: env, logPath: filepath.Join(s.dir, "api.log"), events: s.events}
	for _, p := range append(append([]*proc(nil), s.workers...), s.api) {
		if err := p.Start(); err != nil {
			return err
		}
	}
	if err := s.waitHealthy(ctx, 2*time.Minute); err != nil {
		return err
	}
	s.events.add("API on http://%s (pid %d), workers pid %d and %d", s.apiAddr, s.api.Pid(), s.workers[0].Pid(), s.workers[1].Pid())
	return nil
}

// childEnv is this process's environment without any zikao or Temporal
// setting, plus the given ones.
func childEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ZIKAO_") || strings.HasPrefix(name, "TEMPORAL_") || name == "GIN_MODE" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// waitHealthy waits until the API's /healthz answers 200.
func (s *stack) waitHealthy(ctx context.Context, limit time.Duration) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(limit)
	for {
		resp, err := hc.Get("http://" + s.apiAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the API at %s was not healthy within %s (see %s)", s.apiAddr, limit, filepath.Join(s.dir, "api.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// restartTemporal stops the dev server and starts it again on the same
// port with the same database file.
func (s *stack) restartTemporal(ctx context.Context) error {
	if err := s.stopTemporal(); err != nil {
		return err
	}
	srv, err := devstack.StartTemporal(ctx, s.tOpts)
	if err != nil {
		return fmt.Errorf("start Temporal again: %w", err)
	}
	s.temporal = srv
	return nil
}

func (s *stack) stopTemporal() error {
	srv := s.temporal
	if srv == nil {
		return nil
	}
	s.temporal = nil
	srv.Client().Close()
	done := make(chan error, 1)
	go func() { done <- srv.Stop() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return fmt.Errorf("stop Temporal: %w", err)
		}
		return nil
	case <-time.After(time.Minute):
		return errors.New("the Temporal dev server did not stop within a minute of SIGINT")
	}
}

// stopPostgres stops PostgreSQL in the given pg_ctl mode (fast or immediate).
func (s *stack) stopPostgres(mode string) error {
	data := filepath.Join(s.pg.Dir, "data")
	if out, err := pgCtl("-D", data, "-m", mode, "-w", "-t", "60", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("stop PostgreSQL (%s): %w: %s", mode, err, out)
	}
	return nil
}

// startPostgresAgain starts the stopped cluster on its port.
func (s *stack) startPostgresAgain(ctx context.Context) error {
	pg, err := devstack.StartPostgres(ctx, s.pg.Dir, s.pg.Port, "zikao")
	if err != nil {
		return err
	}
	s.pg = pg
	return nil
}

// pgCtl runs pg_ctl, as the user postgres when this process is root (as
// devstack does: PostgreSQL refuses to run as root).
func pgCtl(args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", "pg_ctl"}, args...)...)
	}
	return exec.Command("pg_ctl", args...)
}

// stop stops everything that runs, the API first.
func (s *stack) stop() {
	if s.api != nil {
		s.api.Stop()
	}
	for _, w := range s.workers {
		w.Stop()
	}
	if s.identity != nil {
		s.identity.Stop()
	}
	if s.registry != nil {
		_ = s.registry.Close()
	}
	if s.mailpit != nil {
		_ = s.mailpit.Stop()
	}
	if s.sms != nil {
		s.sms.stop()
	}
	if s.s3 != nil {
		_ = s.s3.Stop()
		s.s3Log.Close()
	}
	if err := s.stopTemporal(); err != nil {
		s.events.add("%v", err)
	}
	if s.tLog != nil {
		s.tLog.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
	if s.pg != nil {
		if err := s.pg.Stop(); err != nil {
			s.events.add("%v", err)
		}
	}
	s.removePostgresFolder()
}

// removePostgresFolder keeps PostgreSQL's log in the run folder and
// removes the cluster, unless it is kept for inspection.
func (s *stack) removePostgresFolder() {
	if s.pgDir == "" {
		return
	}
	if log, err := os.ReadFile(filepath.Join(s.pgDir, "postgres.log")); err == nil {
		_ = os.WriteFile(filepath.Join(s.dir, "postgres.log"), log, 0o644)
	}
	if s.keepPG && s.pg != nil {
		s.events.add("PostgreSQL cluster kept for inspection: pg_ctl -D %s/data -o \"-p %d -k %s\" start (as root: runuser -u postgres -- pg_ctl …), database zikao",
			s.pgDir, s.pg.Port, s.pgDir)
		return
	}
	if err := os.RemoveAll(s.pgDir); err != nil {
		s.events.add("remove %s: %v", s.pgDir, err)
	}
}
