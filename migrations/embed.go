// Package migrations holds the versioned PostgreSQL schema, applied in order
// by goose (see internal/db). Files are forward-only; never edit a released one.
package migrations

import "embed"

// FS holds every *.sql migration of this folder.
//
//go:embed *.sql
var FS embed.FS
