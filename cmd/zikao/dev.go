package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
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
	"zikao/workflows"
)

// runDev starts the whole system on this machine: PostgreSQL and the
// Temporal dev server (persisting under the data folder), migrations, demo
// data, the diploma registry stand-in, and the worker and API as processes
// of their own. It stops everything on Ctrl-C, or when a process fails.
func runDev(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dataDir := fs.String("data", ".data", "folder for PostgreSQL's cluster and Temporal's database")
	pgPort := fs.Int("pg-port", 55432, "PostgreSQL port on 127.0.0.1")
	temporalPort := fs.Int("temporal-port", 7233, "Temporal frontend port on 127.0.0.1")
	uiPort := fs.Int("ui-port", 8233, "Temporal Web UI port on 127.0.0.1")
	registryAddr := fs.String("registry", "127.0.0.1:8090", "diploma registry stand-in address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return err
	}

	slog.Info("starting PostgreSQL", "port", *pgPort, "folder", filepath.Join(*dataDir, "postgres"))
	pg, err := devstack.StartPostgres(ctx, filepath.Join(*dataDir, "postgres"), *pgPort, "zikao")
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

	database, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	n, err := db.Migrate(ctx, database)
	if err != nil {
		database.Close()
		return err
	}
	slog.Info("migrations applied", "count", n)
	err = demo.Seed(ctx, database, cfg.Year, cfg.Sitting, time.Now())
	database.Close()
	if err != nil {
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

	registryCtx, stopRegistry := context.WithCancel(ctx)
	defer stopRegistry()
	registryDone := make(chan error, 1)
	go func() {
		registryDone <- serve(registryCtx, *registryAddr, chsi.StandIn(cfg.DiplomaRegistryUser, cfg.DiplomaRegistryKey, demo.Diplomas), "diploma registry stand-in")
	}()
	cfg.DiplomaRegistryURL = "http://" + *registryAddr

	env := append(os.Environ(),
		"ZIKAO_DATABASE_URL="+cfg.DatabaseURL,
		"TEMPORAL_ADDRESS="+cfg.TemporalAddress,
		"TEMPORAL_NAMESPACE="+cfg.TemporalNamespace,
		"ZIKAO_DIPLOMA_REGISTRY_URL="+cfg.DiplomaRegistryURL,
		"ZIKAO_YEAR="+strconv.Itoa(cfg.Year),
		"ZIKAO_SITTING="+strconv.Itoa(cfg.Sitting),
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

	if err := waitForHealth(ctx, cfg.ListenAddress); err != nil {
		return err
	}
	printBanner(cfg, *uiPort, pg)

	select {
	case <-ctx.Done():
		slog.Info("stopping")
		return nil
	case err := <-done:
		return err
	case err := <-registryDone:
		return err
	}
}

func waitForHealth(ctx context.Context, addr string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("the API did not start listening within a minute")
}

func printBanner(cfg config.Config, uiPort int, pg *devstack.Postgres) {
	fmt.Printf(`
zikao is running (sitting %d-%d). Ctrl-C stops everything.

  API          http://%s/api/v1   (health: http://%s/healthz)
  Temporal UI  http://127.0.0.1:%d
  Temporal     %s, namespace %s, task queue %s
  PostgreSQL   %s
  Registry     %s (stand-in of 学信网)

Demo accounts (password %q):
`, cfg.Year, cfg.Sitting, cfg.ListenAddress, cfg.ListenAddress, uiPort, cfg.TemporalAddress, cfg.TemporalNamespace, cfg.TaskQueue,
		pg.URL("zikao"), cfg.DiplomaRegistryURL, demo.Password)
	for _, s := range demo.StaffAccounts {
		fmt.Printf("  %-26s %s %s\n", s.LoginName, s.Role, s.Area)
	}
	fmt.Printf(`
Demo data: every exam area's confirmation window is open from yesterday to 30 days on;
  the registry knows 李明 420106199503151234 (diploma 104871201806000123);
  王芳 420106199604202344 holds enrolment records 010620100001 and 010621200007.

`)
}
