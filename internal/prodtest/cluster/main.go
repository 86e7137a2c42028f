// Command cluster runs a production-style Temporal cluster on this machine
// for a trial of the deployment: the Temporal Server 1.29.1 (four services
// in one process) on a PostgreSQL cluster of its own, with PostgreSQL
// persistence and visibility, all on 127.0.0.1. It prints the settings
// for zikao and runs until Ctrl-C. It does not set up the namespace: run
// `zikao temporal setup` against it, as against any cluster.
//
//	go run ./internal/prodtest/cluster -dir .prod
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"zikao/internal/prodtest"
)

func main() {
	dir := flag.String("dir", ".prod", "folder for PostgreSQL's cluster, the server's configuration and log")
	pgPort := flag.Int("pg-port", 55433, "PostgreSQL port on 127.0.0.1 (Temporal's databases and zikao's)")
	frontend := flag.Int("frontend-port", 7233, "Temporal frontend port on 127.0.0.1 (below 32768)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, prodtest.Options{PostgresPort: *pgPort, FrontendPort: *frontend}); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, o prodtest.Options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	slog.Info("starting PostgreSQL and the Temporal Server (the first run builds the server, a few minutes)")
	c, err := prodtest.StartWith(ctx, dir, o)
	if err != nil {
		return err
	}
	fmt.Printf(`Temporal Server running (log: %s). Ctrl-C stops it.

  export TEMPORAL_ADDRESS=%s
  export ZIKAO_DATABASE_URL='%s'

  then: zikao migrate; zikao temporal setup; zikao worker; zikao api (see the README, "Deploying")
`, c.Log, c.Frontend, c.Postgres.URL("zikao"))
	<-ctx.Done()
	slog.Info("stopping")
	return c.Stop()
}
