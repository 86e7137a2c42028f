// Package devstack starts the local parts the system needs on one machine: a
// PostgreSQL cluster of its own and the Temporal CLI's dev server. The run
// command (`zikao dev`) and the tests use it; production never does.
package devstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

// Postgres is a PostgreSQL cluster in a folder of its own, listening on
// 127.0.0.1 only.
type Postgres struct {
	Dir  string // the cluster's folder (socket, data/, postgres.log)
	Port int
	// Relocated is set when Dir is not the folder asked for: as root, the
	// user postgres could not reach that one (see ClusterDir).
	Relocated bool
}

// SharedRoot holds the clusters of data folders that the user postgres
// cannot reach (see ClusterDir).
const SharedRoot = "/var/lib/zikao"

// StartPostgres starts (creating it first when the folder holds none) a
// cluster in dir on the given loopback port, and makes sure database name
// exists. PostgreSQL refuses to run as root, so as root the server runs as
// the system user postgres, in the folder ClusterDir chooses.
func StartPostgres(ctx context.Context, dir string, port int, name string) (*Postgres, error) {
	return StartPostgresWith(ctx, dir, port, name, PostgresOptions{})
}

// PostgresOptions are extra settings of a cluster StartPostgresWith starts.
type PostgresOptions struct {
	// Settings are server settings given at start (-c name=value), for
	// example max_connections; a cluster running already keeps its own.
	Settings map[string]string
}

// StartPostgresWith is StartPostgres with extra server settings.
func StartPostgresWith(ctx context.Context, dir string, port int, name string, o PostgresOptions) (*Postgres, error) {
	dir, relocated, err := ClusterDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create PostgreSQL folder: %w", err)
	}
	if err := ownByPostgres(dir); err != nil {
		return nil, err
	}
	p := &Postgres{Dir: dir, Port: port, Relocated: relocated}
	if err := p.start(ctx, o.Settings); err != nil {
		return nil, err
	}
	if err := p.createDatabase(ctx, name); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

// start creates the cluster when its folder holds none, and starts the
// server unless it runs already.
func (p *Postgres) start(ctx context.Context, settings map[string]string) error {
	data := filepath.Join(p.Dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if out, err := pgCommand(ctx, "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale").CombinedOutput(); err != nil {
			return fmt.Errorf("initdb in %s: %w: %s", data, err, out)
		}
	}
	if pgCommand(ctx, "pg_ctl", "-D", data, "status").Run() == nil {
		return nil
	}
	log := filepath.Join(p.Dir, "postgres.log")
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on", p.Port, p.Dir)
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		opts += fmt.Sprintf(" -c %s=%s", k, settings[k])
	}
	if out, err := pgCommand(ctx, "pg_ctl", "-D", data, "-o", opts, "-l", log, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		return fmt.Errorf("start PostgreSQL: %w: %s (see %s)", err, out, log)
	}
	return nil
}

// ClusterDir returns the absolute folder where the cluster asked for in dir
// lives. That is dir itself, unless this process is root and the user
// postgres cannot reach dir's parent (a clone in root's home, mode 0700):
// then it is SharedRoot/<hash of dir>/postgres, the same for the same dir
// every time, and relocated is true. It never changes a folder's mode.
func ClusterDir(ctx context.Context, dir string) (cluster string, relocated bool, err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return "", false, err
	}
	if os.Geteuid() != 0 {
		return dir, false, nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", false, fmt.Errorf("create %s: %w", parent, err)
	}
	if postgresCanEnter(ctx, parent) {
		return dir, false, nil
	}
	return sharedClusterDir(ctx, dir)
}

// sharedClusterDir makes SharedRoot/<hash of dir>, noting dir in its file
// "origin", and returns its postgres folder.
func sharedClusterDir(ctx context.Context, dir string) (string, bool, error) {
	sum := sha256.Sum256([]byte(dir))
	home := filepath.Join(SharedRoot, hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(home, 0o755); err != nil {
		return "", false, fmt.Errorf("create PostgreSQL's folder for %s: %w", dir, err)
	}
	if !postgresCanEnter(ctx, home) {
		return "", false, fmt.Errorf("the user postgres can reach neither %s nor %s", filepath.Dir(dir), home)
	}
	if err := os.WriteFile(filepath.Join(home, "origin"), []byte(dir+"\n"), 0o644); err != nil {
		return "", false, fmt.Errorf("note the origin of %s: %w", home, err)
	}
	return filepath.Join(home, "postgres"), true, nil
}

// postgresCanEnter reports whether the user postgres can reach and enter
// folder (every parent searchable, the folder itself too), by trying.
func postgresCanEnter(ctx context.Context, folder string) bool {
	return pgCommand(ctx, "test", "-x", folder).Run() == nil
}

// URL is the connection URL of database name.
func (p *Postgres) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, name)
}

// Stop shuts the cluster down (fast mode: open sessions are ended).
func (p *Postgres) Stop() error {
	out, err := pgCommand(context.Background(), "pg_ctl", "-D", filepath.Join(p.Dir, "data"), "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("stop PostgreSQL: %w: %s", err, out)
	}
	return nil
}

func (p *Postgres) createDatabase(ctx context.Context, name string) error {
	db, err := sqlx.Open("postgres", p.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(name)); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// pgCommand runs a PostgreSQL server binary (or another command), as the
// user postgres when this process is root.
func pgCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

func ownByPostgres(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the system user postgres: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RepoRoot finds the repository's top folder (the one holding tools/go.mod)
// from the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tools/go.mod not found above the working directory")
		}
		dir = parent
	}
}

// TemporalBinary returns the path of the Temporal CLI: $ZIKAO_TEMPORAL_BIN if
// set, else the one built (the first time, in a few minutes) from the Go
// module proxy as a tool of tools/go.mod.
func TemporalBinary(ctx context.Context) (string, error) {
	if p := os.Getenv("ZIKAO_TEMPORAL_BIN"); p != "" {
		return p, nil
	}
	return toolBinary(ctx, "tools/go.mod", "temporal", "the Temporal CLI")
}

// toolBinary returns the path of a Go tool of the module file modfile (from
// the repository's root), built from the Go module proxy the first time and
// found in the build cache afterwards.
func toolBinary(ctx context.Context, modfile, tool, what string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "tool", "-modfile="+filepath.Join(root, modfile), "-n", tool)
	cmd.Dir = root
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build %s: %w: %s", what, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// TemporalOptions says how to start the Temporal dev server.
type TemporalOptions struct {
	Port             int    // frontend port on 127.0.0.1; 0 picks a free one
	UIPort           int    // Web UI port; 0 runs headless
	DBFile           string // SQLite file; empty keeps everything in memory
	Namespace        string
	SearchAttributes temporal.SearchAttributes
	Log              io.Writer // the server's own output; nil discards it
}

// StartTemporal starts the Temporal CLI's dev server on 127.0.0.1 and waits
// until it answers. Stop it with (*testsuite.DevServer).Stop.
func StartTemporal(ctx context.Context, o TemporalOptions) (*testsuite.DevServer, error) {
	bin, err := TemporalBinary(ctx)
	if err != nil {
		return nil, err
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	opts := testsuite.DevServerOptions{
		ExistingPath: bin,
		ClientOptions: &client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", o.Port), Namespace: o.Namespace,
			ConnectionOptions: client.ConnectionOptions{GrpcCompression: &client.GrpcCompressionNone{}}}, // as config's default
		DBFilename:       o.DBFile,
		SearchAttributes: o.SearchAttributes,
		LogLevel:         "warn",
		Stdout:           o.Log,
		Stderr:           o.Log,
	}
	if o.UIPort != 0 {
		opts.EnableUI = true
		opts.UIPort = strconv.Itoa(o.UIPort)
	}
	srv, err := testsuite.StartDevServer(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start Temporal dev server: %w", err)
	}
	return srv, nil
}
