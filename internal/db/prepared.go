package db

import (
	"context"
	"fmt"
	"sync"

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
// Only for statements run on the pool itself, never in a transaction:
// preparing takes a connection of the pool, which a transaction waiting
// for it might hold. A connection lost (PostgreSQL restarted) takes its
// statements with it; database/sql prepares them again on the next one.
type Prepared struct {
	pool  *sqlx.DB
	mu    sync.Mutex
	stmts map[string]*sqlx.Stmt
}

// NewPrepared returns an empty set of prepared statements of pool.
func NewPrepared(pool *sqlx.DB) *Prepared {
	return &Prepared{pool: pool, stmts: map[string]*sqlx.Stmt{}}
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
