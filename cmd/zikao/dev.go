//go:build !production

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"zikao/internal/chsi"
	"zikao/internal/config"
	"zikao/internal/db"
	"zikao/internal/demo"
	"zikao/internal/devstack"
	"zikao/internal/identity"
	"zikao/internal/temporalsetup"
	"zikao/workflows"
)

// Not in the production build: the whole development stack, and its object
// store and mail catcher alone (for the production-style trial of the
// README's "Deploying", which runs everything else as in production).
func init() {
	commands["dev"] = runDev
	commands["object-store"] = runObjectStore
	commands["mail-catcher"] = runMailCatcher
}

// runDev starts the whole system on this machine: PostgreSQL and the
// Temporal dev server (persisting under the data folder), migrations, demo
// data, the stand-ins of the diploma registry, of the citizen identity
// verification service and of the SMS provider, and the worker and API as processes of their own.
// It stops everything on Ctrl-C, or when a process fails.
func runDev(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dataDir := fs.String("data", ".data", "folder for PostgreSQL's cluster and Temporal's database")
	pgPort := fs.Int("pg-port", 55432, "PostgreSQL port on 127.0.0.1")
	temporalPort := fs.Int("temporal-port", 7233, "Temporal frontend port on 127.0.0.1")
	uiPort := fs.Int("ui-port", 8233, "Temporal Web UI port on 127.0.0.1")
	registryAddr := fs.String("registry", "127.0.0.1:8090", "diploma registry stand-in address")
	identityAddr := fs.String("identity", "127.0.0.1:8092", "citizen identity verification service stand-in address")
	smsAddr := fs.String("sms", "127.0.0.1:8091", "SMS gateway stand-in address (its page lists every text sent)")
	mailPort := fs.Int("mail-port", 8025, "Mailpit web UI and API port on 127.0.0.1 (where to read the e-mails)")
	smtpPort := fs.Int("smtp-port", 1025, "Mailpit SMTP port on 127.0.0.1")
	s3Port := fs.Int("s3-port", 8333, "S3 port of the object store (SeaweedFS) on 127.0.0.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return err
	}

	pg, err := startPostgres(ctx, *dataDir, *pgPort)
	if err != nil {
		return err
	}
	defer func() {
		if err := pg.Stop(); err != nil {
			slog.Warn("stop PostgreSQL", "error", err)
		} else {
			slog.Info("PostgreSQL stopped")
		}
	}()
	cfg.DatabaseURL = pg.URL("zikao")

	if err := prepareDatabase(ctx, cfg); err != nil {
		return err
	}

	slog.Info("starting Temporal dev server (the first run builds the Temporal CLI, a few minutes)")
	logFile, err := os.OpenFile(filepath.Join(*dataDir, "temporal.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	temporal, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
		Port: *temporalPort, UIPort: *uiPort, DBFile: filepath.Join(*dataDir, "temporal.db"),
		Namespace: cfg.TemporalNamespace, SearchAttributes: workflows.SearchAttributes(), Log: logFile,
	})
	if err != nil {
		return err
	}
	defer func() {
		_ = temporal.Stop()
		slog.Info("Temporal stopped")
	}()
	cfg.TemporalAddress = temporal.FrontendHostPort()
	// The dev server made the namespace and search attributes from its
	// flags; the setup checks them (and updates) as on any cluster.
	if err := setupTemporal(ctx, cfg, temporalsetup.DefaultRetention); err != nil {
		return err
	}

	mailpit, err := startMailpit(ctx, *dataDir, *mailPort, *smtpPort)
	if err != nil {
		return err
	}
	defer func() {
		_ = mailpit.Stop()
		slog.Info("Mailpit stopped")
	}()

	s3, err := startS3(ctx, *dataDir, *s3Port, cfg)
	if err != nil {
		return err
	}
	defer func() {
		_ = s3.Stop()
		slog.Info("SeaweedFS stopped")
	}()
	cfg.S3Endpoint = s3.Endpoint()

	standInsCtx, stopStandIns := context.WithCancel(ctx)
	defer stopStandIns()
	registryDone := make(chan error, 1)
	go func() {
		registryDone <- serve(standInsCtx, *registryAddr, chsi.StandIn(cfg.DiplomaRegistryUser, cfg.DiplomaRegistryKey, demo.Diplomas), "diploma registry stand-in")
	}()
	cfg.DiplomaRegistryURL = "http://" + *registryAddr

	identityDone := make(chan error, 1)
	go func() {
		identityDone <- serve(standInsCtx, *identityAddr, identity.StandIn(cfg.IdentityServiceUser, cfg.IdentityServiceKey), "identity service stand-in")
	}()
	cfg.IdentityServiceURL = "http://" + *identityAddr

	smsDone := make(chan error, 1)
	go func() {
		smsDone <- serveSMSGateway(standInsCtx, cfg, *smsAddr, filepath.Join(*dataDir, "sms", "messages.jsonl"))
	}()
	cfg.SMSURL = "http://" + *smsAddr

	env := append(os.Environ(),
		"ZIKAO_DATABASE_URL="+cfg.DatabaseURL,
		"TEMPORAL_ADDRESS="+cfg.TemporalAddress,
		"TEMPORAL_NAMESPACE="+cfg.TemporalNamespace,
		"ZIKAO_DIPLOMA_REGISTRY_URL="+cfg.DiplomaRegistryURL,
		"ZIKAO_IDENTITY_SERVICE_URL="+cfg.IdentityServiceURL,
		"ZIKAO_SMS_URL="+cfg.SMSURL,
		"ZIKAO_S3_ENDPOINT="+cfg.S3Endpoint,
		"ZIKAO_YEAR="+strconv.Itoa(cfg.Year),
		"ZIKAO_SITTING="+strconv.Itoa(cfg.Sitting),
		// The worker's e-mails go to Mailpit, without TLS or authentication.
		"ZIKAO_SMTP_ADDRESS="+mailpit.SMTPAddress(), "ZIKAO_SMTP_TLS=off", "ZIKAO_SMTP_USER=", "ZIKAO_SMTP_PASSWORD=",
	)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	done := make(chan error, 2)
	var procs []*exec.Cmd
	for _, name := range []string{"worker", "api"} {
		cmd := exec.Command(exe, name)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches them through us, in order
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		go func() { done <- fmt.Errorf("%s exited: %w", name, cmd.Wait()) }()
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for range procs {
			select {
			case <-done:
			case <-time.After(15 * time.Second):
			}
		}
		slog.Info("worker and API stopped")
	}()

	healthy := waitForHealth(ctx, cfg.ListenAddress)
	for {
		select {
		case <-healthy:
			printBanner(cfg, *uiPort, pg, mailpit)
			healthy = nil // once
		case <-ctx.Done():
			slog.Info("stopping")
			return nil
		case err := <-done:
			return err
		case err := <-registryDone:
			return err
		case err := <-identityDone:
			return err
		case err := <-smsDone:
			return err
		}
	}
}

// startPostgres starts the cluster of the data folder, saying where it is
// when, as root, it had to be kept outside (see devstack.ClusterDir).
func startPostgres(ctx context.Context, dataDir string, port int) (*devstack.Postgres, error) {
	slog.Info("starting PostgreSQL", "port", port)
	pg, err := devstack.StartPostgres(ctx, filepath.Join(dataDir, "postgres"), port, "zikao")
	if err != nil {
		return nil, err
	}
	if pg.Relocated {
		abs, _ := filepath.Abs(dataDir)
		slog.Warn("the user postgres cannot reach the data folder: PostgreSQL's cluster is kept outside it",
			"data_folder", abs, "cluster_folder", pg.Dir)
	} else {
		slog.Info("PostgreSQL started", "folder", pg.Dir)
	}
	return pg, nil
}

// prepareDatabase waits (up to a minute) for PostgreSQL, applies the
// migrations and loads the demo data.
func prepareDatabase(ctx context.Context, cfg config.Config) error {
	database, err := db.OpenLazy(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer database.Close()
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := waitFor(wait, "PostgreSQL", time.Second, pingDB(database)); err != nil {
		return fmt.Errorf("PostgreSQL did not answer within a minute: %w", err)
	}
	n, err := db.Migrate(ctx, database)
	if err != nil {
		return err
	}
	slog.Info("migrations applied", "count", n)
	return demo.Seed(ctx, database, cfg.Year, cfg.Sitting, time.Now())
}

// waitForHealth closes the channel it returns once the API at addr answers
// /healthz with 200 (it answers 503 while PostgreSQL or Temporal is away),
// saying every half minute that it is still waiting.
func waitForHealth(ctx context.Context, addr string) <-chan struct{} {
	healthy := make(chan struct{})
	go func() {
		client := &http.Client{Timeout: 5 * time.Second}
		start, lastLog := time.Now(), time.Now()
		for ctx.Err() == nil {
			if apiHealthy(ctx, client, addr) {
				close(healthy)
				return
			}
			if time.Since(lastLog) >= 30*time.Second {
				slog.Warn("waiting for the API to report healthy", "address", addr, "waited", time.Since(start).Round(time.Second).String())
				lastLog = time.Now()
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return healthy
}

func apiHealthy(ctx context.Context, client *http.Client, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func printBanner(cfg config.Config, uiPort int, pg *devstack.Postgres, mailpit *devstack.Mailpit) {
	fmt.Printf(`
zikao is running (sitting %d-%d). Ctrl-C stops everything.

  API          http://%s/api/v1   (health: http://%s/healthz)
  Temporal UI  http://127.0.0.1:%d
  Temporal     %s, namespace %s, task queue %s
  PostgreSQL   %s%s
  Registry     %s (stand-in of 学信网)
  Identity     %s (stand-in of the citizen identity verification service)
  SMS          %s   (stand-in of the SMS provider: every code and text sent)
  Mail         %s   (Mailpit: every e-mail to applicants; SMTP %s)%s
  Files        S3 http://%s, bucket %s (SeaweedFS; list them: go run ./cmd/zikao files list)

Demo accounts (password %q):
`, cfg.Year, cfg.Sitting, cfg.ListenAddress, cfg.ListenAddress, uiPort, cfg.TemporalAddress, cfg.TemporalNamespace, cfg.TaskQueue,
		pg.URL("zikao"), clusterNote(pg), cfg.DiplomaRegistryURL, cfg.IdentityServiceURL, cfg.SMSURL, mailpit.URL(), mailpit.SMTPAddress(), mailNote(cfg), cfg.S3Endpoint, cfg.S3Bucket, demo.Password)
	for _, s := range demo.StaffAccounts {
		fmt.Printf("  %-26s %s %s\n", s.LoginName, s.Role, s.Area)
	}
	fmt.Printf(`
Demo data: every exam area's confirmation window is open from yesterday to 30 days on;
  the registry knows 李明 420106199503151234 (diploma 104871201806000123);
  王芳 420106199604202344 holds enrolment records 010620100001 and 010621200007;
  the identity service has no record of an ID number whose digits 15–17 are 999 ('not in records').

`)
}

// startS3 starts the object store (SeaweedFS's S3 server) with the
// credentials of the settings, its data under the data folder (s3/, its
// log in s3.log), and makes the files' bucket ready (bucketReady).
func startS3(ctx context.Context, dataDir string, port int, cfg config.Config) (*devstack.S3, error) {
	slog.Info("starting SeaweedFS, the object store of files (the first run builds it, about 4 minutes)")
	logFile, err := os.OpenFile(filepath.Join(dataDir, "s3.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	// Its output goes through this process: the file stays open while it runs.
	s3, err := devstack.StartS3(ctx, devstack.S3Options{Dir: filepath.Join(dataDir, "s3"), Port: port,
		AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Log: logFile})
	if err != nil {
		return nil, err
	}
	cfg.S3Endpoint = s3.Endpoint()
	if err := bucketReady(ctx, cfg); err != nil {
		_ = s3.Stop()
		return nil, err
	}
	return s3, nil
}

// runObjectStore runs SeaweedFS's S3 server alone, with the credentials of
// the settings, until Ctrl-C.
func runObjectStore(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("object-store", flag.ContinueOnError)
	dataDir := fs.String("data", ".data", "folder of its data (s3/) and log (s3.log)")
	port := fs.Int("port", 8333, "S3 port on 127.0.0.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return err
	}
	s3, err := startS3(ctx, *dataDir, *port, cfg)
	if err != nil {
		return err
	}
	defer s3.Stop()
	cfg.S3Endpoint = s3.Endpoint()
	slog.Info("object store ready: set ZIKAO_S3_ENDPOINT to it", "endpoint", cfg.S3Endpoint, "bucket", cfg.S3Bucket)
	<-ctx.Done()
	return nil
}

// runMailCatcher runs Mailpit alone until Ctrl-C: the worker's e-mails
// (ZIKAO_SMTP_ADDRESS 127.0.0.1:1025, ZIKAO_SMTP_TLS=off) are read on its page.
func runMailCatcher(ctx context.Context, _ config.Config, args []string) error {
	fs := flag.NewFlagSet("mail-catcher", flag.ContinueOnError)
	dataDir := fs.String("data", ".data", "folder of its database (mailpit.db) and log (mailpit.log)")
	uiPort := fs.Int("port", 8025, "web page and API port on 127.0.0.1")
	smtpPort := fs.Int("smtp-port", 1025, "SMTP port on 127.0.0.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return err
	}
	m, err := startMailpit(ctx, *dataDir, *uiPort, *smtpPort)
	if err != nil {
		return err
	}
	defer m.Stop()
	slog.Info("Mailpit ready", "page", m.URL(), "smtp", m.SMTPAddress())
	<-ctx.Done()
	return nil
}

// bucketReady makes the files' bucket and writes to it once, so that the
// first upload is not the slow first write of a new bucket.
func bucketReady(ctx context.Context, cfg config.Config) error {
	objects, err := objectStore(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return objects.Ready(ctx)
}

// startMailpit starts Mailpit, the mail catcher, keeping its messages in
// the data folder (mailpit.db; its log in mailpit.log).
func startMailpit(ctx context.Context, dataDir string, uiPort, smtpPort int) (*devstack.Mailpit, error) {
	slog.Info("starting Mailpit (the first run builds it, about a minute)")
	logFile, err := os.OpenFile(filepath.Join(dataDir, "mailpit.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	// Mailpit holds its own descriptor of the file: ours can close now.
	defer logFile.Close()
	return devstack.StartMailpit(ctx, devstack.MailpitOptions{UIPort: uiPort, SMTPPort: smtpPort,
		DBFile: filepath.Join(dataDir, "mailpit.db"), Log: logFile})
}

// mailNote says when the worker sends nothing.
func mailNote(cfg config.Config) string {
	if cfg.MailEnabled {
		return ""
	}
	return "\n               ZIKAO_MAIL_ENABLED=false: e-mails stay in the outbox, none is sent"
}

// clusterNote tells where the cluster is when it is not in the data folder.
func clusterNote(pg *devstack.Postgres) string {
	if !pg.Relocated {
		return ""
	}
	return "\n               cluster in " + pg.Dir + " (the user postgres cannot reach the data folder)"
}
