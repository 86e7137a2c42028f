// Package db opens the PostgreSQL database and applies the schema migrations.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"zikao/migrations"
)

// Open connects to PostgreSQL and checks the connection: for commands that
// should fail at once when the database is away.
func Open(ctx context.Context, url string) (*sqlx.DB, error) {
	db, err := OpenLazy(url)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("reach database: %w", err)
	}
	return db, nil
}

// maxConns is the most connections a process holds open to PostgreSQL.
const maxConns = 20

// OpenLazy prepares the connection pool without connecting: for servers that
// start while PostgreSQL is away and connect once it answers. Each query
// connects as needed.
func OpenLazy(url string) (*sqlx.DB, error) {
	cfg, err := pq.NewConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// A query with parameters in one round trip (Parse, Bind, Execute)
	// rather than two (the statement described first, then bound): half
	// the messages and system calls on both sides. Parameters go as text,
	// as before, except []byte ones, which go as binary: every []byte the
	// product sends is a bytea. (A []byte for a jsonb or text parameter
	// would be refused or misread: send a JSON document as a string.)
	cfg.BinaryParameters = true
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(connector), "postgres")
	// As many idle connections as open ones: under load a pool that keeps
	// fewer closes a connection on release and opens one again a moment
	// later, and each new connection is a PostgreSQL server process to
	// start and warm (BenchmarkLongestPathConcurrent measured 1.6 per
	// registration with 10). Connections idle for minutes still close.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// Migrate applies every pending migration of the migrations folder, holding a
// PostgreSQL advisory lock so that concurrent runs apply each migration once.
// It returns how many migrations it applied.
func Migrate(ctx context.Context, db *sqlx.DB) (int, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return 0, fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, migrations.FS, goose.WithSessionLocker(locker))
	if err != nil {
		return 0, fmt.Errorf("load migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	return len(results), nil
}

// InTx runs fn in a transaction, committing when fn returns nil.
func InTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// IsForeignKeyViolation reports whether err is PostgreSQL's foreign_key_violation.
func IsForeignKeyViolation(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23503"
}
