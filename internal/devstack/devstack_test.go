package devstack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zikao/internal/db"
)

// As root, a data folder inside a folder only root may enter (a clone in
// /root) gets its cluster in SharedRoot, the same one at every start, and
// the root-only folder keeps its mode.
func TestStartPostgresInRootOnlyFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can have a data folder the user postgres cannot reach")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	home := filepath.Join(t.TempDir(), "root-home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil { // whatever the umask
		t.Fatal(err)
	}
	dataDir := filepath.Join(home, "zikao", ".data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil { // as zikao dev does
		t.Fatal(err)
	}
	if postgresCanEnter(ctx, dataDir) {
		t.Fatalf("the user postgres can enter %s: the test proves nothing", dataDir)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}

	pg := startAndWrite(ctx, t, filepath.Join(dataDir, "postgres"), port, `CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)`)
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(pg.Dir)) })
	if !pg.Relocated || !strings.HasPrefix(pg.Dir, SharedRoot+"/") {
		t.Fatalf("cluster in %s (relocated %v), want it under %s", pg.Dir, pg.Relocated, SharedRoot)
	}
	origin, err := os.ReadFile(filepath.Join(filepath.Dir(pg.Dir), "origin"))
	if err != nil || strings.TrimSpace(string(origin)) != filepath.Join(dataDir, "postgres") {
		t.Errorf("origin file: %q, %v", origin, err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}

	again := startAndWrite(ctx, t, filepath.Join(dataDir, "postgres"), port, `INSERT INTO kept VALUES (43)`)
	defer again.Stop()
	if again.Dir != pg.Dir {
		t.Fatalf("second start in %s, first in %s: not stable", again.Dir, pg.Dir)
	}
	if info, err := os.Stat(home); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("root-only folder changed: %v, %v", info.Mode(), err)
	}
}

// startAndWrite starts the cluster of dir and runs sql in database zikao.
func startAndWrite(ctx context.Context, t *testing.T, dir string, port int, sql string) *Postgres {
	t.Helper()
	pg, err := StartPostgres(ctx, dir, port, "zikao")
	if err != nil {
		t.Fatal(err)
	}
	database, err := db.Open(ctx, pg.URL("zikao"))
	if err != nil {
		_ = pg.Stop()
		t.Fatal(err)
	}
	defer database.Close()
	if _, err := database.ExecContext(ctx, sql); err != nil {
		_ = pg.Stop()
		t.Fatal(err)
	}
	return pg
}

// A folder the user postgres can reach (a temporary folder, as the tests
// use) keeps its cluster.
func TestClusterDirKeepsReachableFolder(t *testing.T) {
	dir, err := os.MkdirTemp("", "zikao-devstack-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	got, relocated, err := ClusterDir(context.Background(), dir)
	if err != nil || relocated || got != dir {
		t.Fatalf("ClusterDir(%s) = %s, %v, %v", dir, got, relocated, err)
	}
}
