package db

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// Prepared keeps the statements a store runs most, each prepared once on
// its pool. lib/pq sends every other query unprepared, which PostgreSQL
// parses and plans at every call; a prepared statement is parsed once per
// connection and, from its sixth run on, planned once (a generic plan, where
// the plan does not depend on the arguments, as for a look-up by key).
// Profiled under load (BenchmarkLongestPathConcurrent with
// ZIKAO_PG_STATEMENTS), planning the registration's read alone took PostgreSQL
// more time than running it.
//
// A statement is prepared on the pool (database/sql then prepares it on
// each connection at its first use there). Preparing it takes a connection,
// so a transaction never waits for that: the first time a transaction runs
// a statement, the statement runs unprepared and is prepared on the pool in
// the background. A connection lost (PostgreSQL restarted) takes its
// statements with it; database/sql prepares them again on the next one.
type Prepared struct {
	pool      *sqlx.DB
	mu        sync.Mutex
	stmts     map[string]*sqlx.Stmt
	preparing map[string]bool
}

// NewPrepared returns an empty set of prepared statements of pool.
func NewPrepared(pool *sqlx.DB) *Prepared {
	return &Prepared{pool: pool, stmts: map[string]*sqlx.Stmt{}, preparing: map[string]bool{}}
}

// Exec runs query in tx, a transaction of the pool: prepared once the pool
// has prepared it, unprepared before (the pool then prepares it in the
// background).
func (p *Prepared) Exec(ctx context.Context, tx *sqlx.Tx, query string, args ...any) (sql.Result, error) {
	p.mu.Lock()
	st, ok := p.stmts[query]
	if !ok && !p.preparing[query] {
		p.preparing[query] = true
		go p.prepare(query)
	}
	p.mu.Unlock()
	if !ok {
		return tx.ExecContext(ctx, query, args...)
	}
	return tx.StmtxContext(ctx, st).ExecContext(ctx, args...)
}

// prepare prepares query on the pool, for Exec.
func (p *Prepared) prepare(query string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := p.Stmt(ctx, query)
	p.mu.Lock()
	delete(p.preparing, query) // tried again at its next use if it failed
	p.mu.Unlock()
	if err != nil {
		slog.Warn("statement left unprepared for now", "error", err)
	}
}

// Stmt returns query prepared on the pool, preparing it at its first call
// (two first calls at once may both prepare it: one statement is kept).
func (p *Prepared) Stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	p.mu.Lock()
	st, ok := p.stmts[query]
	p.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := p.pool.PreparexContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare statement: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if first, ok := p.stmts[query]; ok {
		st.Close()
		return first, nil
	}
	p.stmts[query] = st
	return st, nil
}
