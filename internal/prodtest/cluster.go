// Package prodtest runs a production-style Temporal cluster on this machine:
// the real Temporal Server (not the CLI's dev server), built from the Go
// module proxy as a tool of tools/go.mod, with PostgreSQL persistence and
// PostgreSQL advanced visibility, its schemas applied by its SQL tool. Its
// test sets it up with `zikao temporal setup`'s code only and drives the
// longest registration path through it.
package prodtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"

	"zikao/internal/devstack"
)

// Sizing of the cluster: what the README's Deploying section quotes.
const (
	HistoryShards     = 4   // fixed for the cluster's life: choose it before the first start
	DefaultStoreConns = 20  // per service (4 services) to the temporal database
	VisibilityConns   = 10  // per service to the temporal_visibility database
	MaxConnections    = 300 // PostgreSQL's max_connections (4 × (20 + 10) = 120 for Temporal alone)
)

// Cluster is a Temporal Server with its own PostgreSQL cluster.
type Cluster struct {
	Dir      string
	Postgres *devstack.Postgres
	Frontend string // host:port of the frontend
	Log      string // the server's log file
	cmd      *exec.Cmd
	exited   chan error
}

// Start starts PostgreSQL in dir (max_connections raised), creates and
// migrates Temporal's two databases with the SQL tool, writes the server's
// configuration and starts the server on free loopback ports, waiting until
// its frontend answers. The zikao database is created too.
func Start(ctx context.Context, dir string) (*Cluster, error) {
	return StartWith(ctx, dir, Options{})
}

// Options fix the ports of a cluster (0 picks free ones).
type Options struct {
	PostgresPort int // on 127.0.0.1
	FrontendPort int // on 127.0.0.1, below 32768
}

// StartWith is Start on the given ports. A folder used before keeps its
// data: the schemas are only brought up to date.
func StartWith(ctx context.Context, dir string, o Options) (*Cluster, error) {
	server, sqlTool, schemas, err := binaries(ctx)
	if err != nil {
		return nil, err
	}
	port := o.PostgresPort
	if port == 0 {
		if port, err = devstack.FreePort(); err != nil {
			return nil, err
		}
	}
	pg, err := devstack.StartPostgresWith(ctx, filepath.Join(dir, "postgres"), port, "zikao",
		devstack.PostgresOptions{Settings: map[string]string{"max_connections": strconv.Itoa(MaxConnections)}})
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Postgres: pg, Log: filepath.Join(dir, "temporal-server.log")}
	if err := c.applySchemas(ctx, sqlTool, schemas); err != nil {
		_ = pg.Stop()
		return nil, err
	}
	if err := c.startServer(ctx, server, o.FrontendPort); err != nil {
		_ = pg.Stop()
		return nil, err
	}
	return c, nil
}

// Stop stops the server, then PostgreSQL.
func (c *Cluster) Stop() error {
	var errs []error
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.exited:
		case <-time.After(20 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
	if err := c.Postgres.Stop(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// binaries builds (once; cached afterwards) the server and the SQL tool
// from tools/go.mod, unless $ZIKAO_TEMPORAL_SERVER_BIN and
// $ZIKAO_TEMPORAL_SQL_BIN name them, and finds the module's schema folder.
func binaries(ctx context.Context) (server, sqlTool, schemas string, err error) {
	root, err := devstack.RepoRoot()
	if err != nil {
		return "", "", "", err
	}
	modfile := "-modfile=" + filepath.Join(root, "tools", "go.mod")
	if server = os.Getenv("ZIKAO_TEMPORAL_SERVER_BIN"); server == "" {
		if server, err = goCommand(ctx, root, "tool", modfile, "-n", "server"); err != nil {
			return "", "", "", fmt.Errorf("build the Temporal Server: %w", err)
		}
	}
	if sqlTool = os.Getenv("ZIKAO_TEMPORAL_SQL_BIN"); sqlTool == "" {
		if sqlTool, err = goCommand(ctx, root, "tool", modfile, "-n", "sql"); err != nil {
			return "", "", "", fmt.Errorf("build the Temporal SQL tool: %w", err)
		}
	}
	mod, err := goCommand(ctx, root, "list", modfile, "-m", "-f", "{{.Dir}}", "go.temporal.io/server")
	if err != nil {
		return "", "", "", fmt.Errorf("find the Temporal Server module: %w", err)
	}
	return server, sqlTool, filepath.Join(mod, "schema", "postgresql", "v12"), nil
}

func goCommand(ctx context.Context, dir string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Stderr = dir, &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// applySchemas creates the temporal and temporal_visibility databases and
// brings them to the module's schema versions, as an operator would.
func (c *Cluster) applySchemas(ctx context.Context, sqlTool, schemas string) error {
	for db, folder := range map[string]string{"temporal": "temporal", "temporal_visibility": "visibility"} {
		base := []string{"--plugin", "postgres12", "--endpoint", "127.0.0.1", "--port", strconv.Itoa(c.Postgres.Port), "--user", "postgres", "--database", db}
		steps := [][]string{{"update-schema", "-d", filepath.Join(schemas, folder, "versioned")}}
		exists, err := c.databaseExists(ctx, db)
		if err != nil {
			return err
		}
		if !exists {
			steps = append([][]string{{"create-database"}, {"setup-schema", "-v", "0.0"}}, steps...)
		}
		for _, step := range steps {
			out, err := exec.CommandContext(ctx, sqlTool, append(base, step...)...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("temporal-sql-tool %s on %s: %w: %s", step[0], db, err, out)
			}
		}
	}
	return nil
}

// ports of the server's four services.
type ports struct {
	Frontend, FrontendMembership, History, HistoryMembership   int
	Matching, MatchingMembership, Worker, WorkerMembership     int
	PGPort, Shards, DefaultConns, VisibilityConns, DefaultIdle int
}

// freePorts picks the services' ports below 32768: the server stores its
// ports in PostgreSQL as smallint (cluster_membership), and refuses to start
// with a port above (the kernel's ephemeral ports are).
func freePorts(pgPort, frontend int) (ports, error) {
	var ps [8]int
	taken := map[int]bool{pgPort: true, frontend: true}
	ps[0] = frontend
	for i := range ps {
		if ps[i] != 0 {
			continue
		}
		p, err := freeLowPort(taken)
		if err != nil {
			return ports{}, err
		}
		ps[i], taken[p] = p, true
	}
	return ports{ps[0], ps[1], ps[2], ps[3], ps[4], ps[5], ps[6], ps[7],
		pgPort, HistoryShards, DefaultStoreConns, VisibilityConns, DefaultStoreConns}, nil
}

var configTemplate = template.Must(template.New("config").Parse(`log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: {{.Shards}}
  datastores:
    postgres-default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "127.0.0.1:{{.PGPort}}"
        connectProtocol: tcp
        user: postgres
        maxConns: {{.DefaultConns}}
        maxIdleConns: {{.DefaultIdle}}
        maxConnLifetime: 1h
    postgres-visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: "127.0.0.1:{{.PGPort}}"
        connectProtocol: tcp
        user: postgres
        maxConns: {{.VisibilityConns}}
        maxIdleConns: {{.VisibilityConns}}
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
services:
  frontend:
    rpc: {grpcPort: {{.Frontend}}, membershipPort: {{.FrontendMembership}}, bindOnLocalHost: true}
  history:
    rpc: {grpcPort: {{.History}}, membershipPort: {{.HistoryMembership}}, bindOnLocalHost: true}
  matching:
    rpc: {grpcPort: {{.Matching}}, membershipPort: {{.MatchingMembership}}, bindOnLocalHost: true}
  worker:
    rpc: {grpcPort: {{.Worker}}, membershipPort: {{.WorkerMembership}}, bindOnLocalHost: true}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:{{.Frontend}}"
dcRedirectionPolicy:
  policy: noop
`))

// startServer writes config/development.yaml and starts the server's four
// services in one process, waiting (up to two minutes) for the frontend.
func (c *Cluster) startServer(ctx context.Context, server string, frontend int) error {
	p, err := freePorts(c.Postgres.Port, frontend)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(c.Dir, "config"), 0o755); err != nil {
		return err
	}
	var cfg bytes.Buffer
	if err := configTemplate.Execute(&cfg, p); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "config", "development.yaml"), cfg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write the server's configuration: %w", err)
	}
	log, err := os.OpenFile(c.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	c.cmd = exec.Command(server, "--root", c.Dir, "--config", "config", "--env", "development", "--allow-no-auth", "start")
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start the Temporal Server: %w", err)
	}
	c.exited = make(chan error, 1)
	go func() { c.exited <- c.cmd.Wait() }()
	c.Frontend = fmt.Sprintf("127.0.0.1:%d", p.Frontend)
	return c.waitForFrontend(ctx)
}

// waitForFrontend dials until the frontend answers.
func (c *Cluster) waitForFrontend(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		dialCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		tc, err := client.DialContext(dialCtx, client.Options{HostPort: c.Frontend, Logger: quiet{}})
		cancel()
		if err == nil {
			tc.Close()
			return nil
		}
		select {
		case werr := <-c.exited:
			c.exited <- werr
			return fmt.Errorf("the Temporal Server exited: %v; its log ends with:\n%s", werr, logTail(c.Log))
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Temporal Server did not answer within two minutes: %w; its log ends with:\n%s", err, logTail(c.Log))
		}
		slog.Debug("waiting for the Temporal Server", "error", err)
	}
}

// quiet drops the SDK's log lines while the server starts.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

// logTail is the end of a log file, for an error message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// freeLowPort finds a free loopback port in 20000–32767 not yet taken.
func freeLowPort(taken map[int]bool) (int, error) {
	for range 200 {
		p := 20000 + rand.IntN(12768)
		if taken[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("no free port in 20000–32767")
}

// databaseExists reports whether the cluster holds database name.
func (c *Cluster) databaseExists(ctx context.Context, name string) (bool, error) {
	db, err := sqlx.Open("postgres", c.Postgres.URL("postgres"))
	if err != nil {
		return false, err
	}
	defer db.Close()
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return false, fmt.Errorf("look up database %s: %w", name, err)
	}
	return exists, nil
}
