// Command zikao runs the registration system's processes and its
// administration commands:
//
//	zikao dev                      the whole system on this machine, with demo data
//	zikao api                      the HTTP API server
//	zikao worker                   the Temporal worker
//	zikao migrate                  apply the database migrations
//	zikao staff create …           create or update a staff account
//	zikao window set …             set an exam area's confirmation window
//	zikao enrolled import FILE     load enrolment records from a CSV file
//	zikao diploma-registry         the diploma registry (学信网) stand-in
//	zikao identity-service         the citizen identity verification service (公民身份核验) stand-in
//	zikao sms-gateway              the SMS provider's stand-in
//	zikao files migrate|rekey|list move files into the object store, re-seal their keys, list them
//
// Settings come from environment variables (see internal/config and the README).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"zikao/activities"
	"zikao/api"
	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/chsi"
	"zikao/internal/config"
	"zikao/internal/db"
	"zikao/internal/demo"
	"zikao/internal/enrolled"
	"zikao/internal/identity"
	"zikao/internal/metrics"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/worker"
)

const usage = `usage: zikao COMMAND [flags]

commands:
  dev                 (not in the production build) start PostgreSQL, Temporal (with its UI), the diploma registry,
                      identity service and SMS gateway stand-ins, the worker and the API, with demo data;
                      Ctrl-C stops all
  api                 run the HTTP API server
  worker              run the Temporal worker
  migrate             apply pending database migrations
  staff create        create or update a staff account (-login -password -role [-area])
  window set          set a confirmation window (-area -start -end [-year -sitting])
  enrolled import F   load enrolment records from CSV file F
  diploma-registry    run the diploma registry stand-in (-listen)
  identity-service    run the citizen identity verification service stand-in (-listen)
  sms-gateway         run the SMS provider stand-in (-listen, -data FILE keeping what it received)
  object-store        (not in the production build) SeaweedFS's S3 server alone (-data, -port 8333)
  mail-catcher        (not in the production build) Mailpit alone (-data, -port 8025, -smtp-port 1025)
  chaos               (not in the production build) fault-injection run on its own stack (-n -seed -dir …; see internal/chaos)
  temporal setup      create the namespace if missing, register search attributes, check updates,
                      create the retention schedules (-retention)
  files migrate       move the files PostgreSQL still holds into the object store (-batch)
  files rekey         re-seal files' data keys with the current key of ZIKAO_FILE_KEYS (-batch)
  files list          list the object store's files (-limit)
`

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.FromEnv()
	if err != nil {
		fatal(err)
	}
	run, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	err = run(ctx, cfg, os.Args[2:])
	if err != nil {
		fatal(err)
	}
}

// command runs a subcommand with the settings and its arguments.
type command func(ctx context.Context, cfg config.Config, args []string) error

// commands are the subcommands; `dev` (with `object-store` and
// `mail-catcher`) and `chaos` join them in builds
// without the production tag (dev.go, chaos.go), and only there: they link
// the Temporal dev server's harness and the fault-injection rig.
var commands = map[string]command{
	"api":              func(ctx context.Context, cfg config.Config, _ []string) error { return runAPI(ctx, cfg) },
	"worker":           func(ctx context.Context, cfg config.Config, _ []string) error { return runWorker(ctx, cfg) },
	"migrate":          func(ctx context.Context, cfg config.Config, _ []string) error { return migrate(ctx, cfg) },
	"staff":            createStaff,
	"window":           setWindow,
	"enrolled":         importEnrolled,
	"diploma-registry": runRegistry,
	"identity-service": runIdentityService,
	"sms-gateway":      runSMSGateway,
	"temporal":         runTemporalCmd,
	"files":            runFilesCmd,
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "zikao:", err)
	os.Exit(1)
}

// connect opens PostgreSQL and dials Temporal, failing at once when either
// is away (for the administration commands; the servers use connectLazily);
// closeAll closes both.
func connect(ctx context.Context, cfg config.Config) (database *sqlx.DB, tc client.Client, closeAll func(), err error) {
	if database, err = db.Open(ctx, cfg.DatabaseURL); err != nil {
		return nil, nil, nil, err
	}
	opts, err := cfg.TemporalClientOptions()
	if err == nil {
		opts.Logger = tlog.NewStructuredLogger(slog.Default())
		tc, err = client.Dial(opts)
	}
	if err != nil {
		database.Close()
		return nil, nil, nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return database, tc, func() { tc.Close(); database.Close() }, nil
}

// runAPI serves the API at once; /healthz answers 503 until PostgreSQL and
// Temporal answer.
func runAPI(ctx context.Context, cfg config.Config) error {
	database, tc, closeAll, err := connectLazily(cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	reportUntilReachable(ctx, database, tc)
	go servePprof(ctx, cfg.PprofAddress, "API")
	s := api.NewServer(database, tc, cfg.TaskQueue, cfg.Year, cfg.Sitting)
	if s.Registering.Files, err = openFiles(cfg, database); err != nil {
		return err
	}
	s.Accounts.SessionTTL = cfg.SessionTTL
	s.Accounts.SMSLimits = smsLimits(cfg)
	s.SMS = smsSender(cfg, database, s.SMSMetrics)
	s.Registering.OverdueAfter = cfg.ReviewOverdueAfter
	s.Registering.Identity = identity.NewClient(cfg.IdentityServiceURL, cfg.IdentityServiceUser, cfg.IdentityServiceKey, cfg.IdentityServiceTimeout)
	h, err := s.Handler(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	return serve(ctx, cfg.ListenAddress, h, "API")
}

// serve runs an HTTP server until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, addr string, h http.Handler, what string) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info(what+" listening", "address", addr)
	select {
	case err := <-errc:
		return fmt.Errorf("%s: %w", what, err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runWorker polls as soon as Temporal answers, waiting for it (and logging
// while PostgreSQL is away) rather than exiting; meanwhile activities that
// need PostgreSQL fail and are retried as their policies say.
func runWorker(ctx context.Context, cfg config.Config) error {
	database, tc, closeAll, err := connectLazily(cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	go func() { _ = waitFor(ctx, "PostgreSQL", retryInterval, pingDB(database)) }()
	go serveWorkerMetrics(ctx, cfg, database)
	go servePprof(ctx, cfg.PprofAddress, "worker")
	defer startMailSender(ctx, cfg, database)() // the e-mail outbox's sender; waits for it on the way out
	defer startSMSSender(ctx, cfg, database)()  // and the SMS outbox's
	acts := &activities.Activities{
		Registrations: registrations.NewStore(database),
		Diplomas:      chsi.NewClient(cfg.DiplomaRegistryURL, cfg.DiplomaRegistryUser, cfg.DiplomaRegistryKey, cfg.DiplomaRegistryTimeout),
	}
	fileStore, err := openFiles(cfg, database)
	if err != nil {
		return err
	}
	deleted := metrics.NewRetention() // served by the worker's /metrics (the default registry)
	var registered prometheus.AlreadyRegisteredError
	if err := prometheus.Register(deleted); errors.As(err, &registered) {
		deleted = registered.ExistingCollector.(*metrics.Retention) // a worker started again in this process
	}
	retention := &activities.Retention{DB: database, Files: fileStore, Periods: cfg.Retention, Deleted: deleted.Deleted}
	w, err := startWorker(ctx, tc, func(c client.Client, taskQueue string, acts *activities.Activities) sdkworker.Worker {
		w := worker.New(c, taskQueue, acts)
		worker.RegisterRetention(w, retention) // run by the retention schedules (zikao temporal setup)
		return w
	}, cfg.TaskQueue, acts)
	if err != nil {
		return nil // stopped before Temporal answered
	}
	slog.Info("worker polling", "task_queue", cfg.TaskQueue)
	// The reconciler repairs registrations whose row and workflow disagree
	// (one worker at a time sweeps).
	svc := registering.New(database, tc, cfg.TaskQueue, cfg.Year, cfg.Sitting)
	svc.Files = fileStore
	go registering.NewReconciler(svc, database).Run(ctx)
	<-ctx.Done()
	w.Stop()
	return nil
}

// withDB runs fn with the database open.
func withDB(ctx context.Context, cfg config.Config, fn func(*sqlx.DB) error) error {
	database, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer database.Close()
	return fn(database)
}

func migrate(ctx context.Context, cfg config.Config) error {
	return withDB(ctx, cfg, func(database *sqlx.DB) error {
		n, err := db.Migrate(ctx, database)
		if err != nil {
			return err
		}
		fmt.Printf("applied %d migration(s)\n", n)
		return nil
	})
}

func createStaff(ctx context.Context, cfg config.Config, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: zikao staff create -login EMAIL -password PASSWORD -role ROLE [-area CODE]")
	}
	fs := flag.NewFlagSet("staff create", flag.ContinueOnError)
	login := fs.String("login", "", "login name (e-mail)")
	password := fs.String("password", "", "password (at least 6 characters); or set ZIKAO_STAFF_PASSWORD")
	role := fs.String("role", "", "county_reviewer, provincial_reviewer, onsite_operator or admin")
	area := fs.String("area", "", "exam area code, for county_reviewer and onsite_operator")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *password == "" {
		*password = os.Getenv("ZIKAO_STAFF_PASSWORD")
	}
	return withDB(ctx, cfg, func(database *sqlx.DB) error {
		a, err := accounts.NewStore(database).CreateStaff(ctx, *login, *password, *role, *area)
		if err != nil {
			return err
		}
		fmt.Printf("staff account %d: %s (%s %s)\n", a.ID, a.LoginName, a.Role, a.Area())
		return nil
	})
}

func setWindow(ctx context.Context, cfg config.Config, args []string) error {
	if len(args) == 0 || args[0] != "set" {
		return errors.New("usage: zikao window set -area CODE -start RFC3339 -end RFC3339 [-year Y -sitting 1|2]")
	}
	fs := flag.NewFlagSet("window set", flag.ContinueOnError)
	area := fs.String("area", "", "exam area code")
	start := fs.String("start", "", "window start, RFC 3339")
	end := fs.String("end", "", "window end, RFC 3339")
	year := fs.Int("year", cfg.Year, "year of the sitting")
	sitting := fs.Int("sitting", cfg.Sitting, "sitting: 1 (April) or 2 (October)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var w catalog.Window
	var err error
	if w.StartsAt, err = time.Parse(time.RFC3339, *start); err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	if w.EndsAt, err = time.Parse(time.RFC3339, *end); err != nil {
		return fmt.Errorf("-end: %w", err)
	}
	database, tc, closeAll, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	svc := registering.New(database, tc, cfg.TaskQueue, *year, *sitting)
	moved, err := svc.MoveWindow(ctx, *area, *year, *sitting, w)
	var bad *registering.Invalid
	if errors.As(err, &bad) {
		_, en := bad.Fields.Split()
		return fmt.Errorf("window not set: %v", en)
	}
	var refused *registering.Refusal
	if errors.As(err, &refused) {
		return fmt.Errorf("window not set: no exam area %q", *area)
	}
	if err != nil && len(moved.NotMoved) == 0 {
		return err // nothing known to be set or moved (the same rule as PUT /admin/windows)
	}
	if !moved.Done {
		fmt.Printf("window of %s set; moving its open registrations (window move %s)\n", *area, moved.Operation)
		if moved, err = followMove(ctx, svc, moved); err != nil && len(moved.NotMoved) == 0 {
			return err
		}
	}
	fmt.Printf("window of %s set; %d of %d open registration(s) moved to it\n", *area, moved.Moved, moved.Total)
	for id, why := range moved.NotMoved {
		fmt.Fprintf(os.Stderr, "registration %s keeps its old window: %v\n", id, why)
	}
	if err != nil {
		return fmt.Errorf("%w; run the command again", err)
	}
	return nil
}

// followMove waits for a window move to end, printing its progress every
// few seconds, and returns its outcome (as Service.WindowMove). Stopped
// (Ctrl-C), it leaves the move running and says how to follow it.
func followMove(ctx context.Context, svc *registering.Service, m registering.Moved) (registering.Moved, error) {
	shown := -1
	for {
		if m.Moved != shown {
			fmt.Printf("  %d of %d moved\n", m.Moved, m.Total)
			shown = m.Moved
		}
		select {
		case <-ctx.Done():
			return m, fmt.Errorf("stopped waiting; the move goes on: GET /api/v1/admin/window-moves/%s follows it", m.Operation)
		case <-time.After(2 * time.Second):
		}
		next, err := svc.WindowMove(ctx, m.Operation)
		switch {
		case next.Done:
			return next, err
		case err != nil && registering.Unavailable(err):
			slog.Warn("window move: progress unavailable; trying again", "error", err)
		case err != nil:
			return m, err
		default:
			m = next
		}
	}
}

func importEnrolled(ctx context.Context, cfg config.Config, args []string) error {
	if len(args) != 2 || args[0] != "import" {
		return errors.New("usage: zikao enrolled import FILE.csv")
	}
	f, err := os.Open(args[1])
	if err != nil {
		return err
	}
	defer f.Close()
	return withDB(ctx, cfg, func(database *sqlx.DB) error {
		res, err := enrolled.NewStore(database).Import(ctx, f)
		if err != nil {
			return err
		}
		fmt.Printf("%d record(s) added, %d already present\n", res.Added, res.Unchanged)
		return nil
	})
}

func runRegistry(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("diploma-registry", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8090", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serve(ctx, *listen, chsi.StandIn(cfg.DiplomaRegistryUser, cfg.DiplomaRegistryKey, demo.Diplomas), "diploma registry stand-in")
}

func runIdentityService(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("identity-service", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8092", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serve(ctx, *listen, identity.StandIn(cfg.IdentityServiceUser, cfg.IdentityServiceKey), "identity service stand-in")
}
