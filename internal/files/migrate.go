package files

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Moved is what a batch of Migrate or Rekey did.
type Moved struct {
	Files int   // files moved (or re-sealed)
	Bytes int64 // their size
	Left  int   // files still to do
}

// Migrate moves up to limit files written before the object store from
// PostgreSQL into it: each in a transaction holding its content's lock that
// puts the sealed object, then empties the row's data. Killed half-way, it
// leaves every file in one place or the other (an object put whose row was
// not emptied is put again, whole, by the next run): run it again until
// Left is 0. It never changes a file's id or bytes.
func (s *Store) Migrate(ctx context.Context, limit int) (Moved, error) {
	if s.objects == nil {
		return Moved{}, fmt.Errorf("%w: no object store configured", ErrUnavailable)
	}
	var ids []string
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM files WHERE data IS NOT NULL ORDER BY id LIMIT $1`, limit); err != nil {
		return Moved{}, fmt.Errorf("find files to migrate: %w", err)
	}
	var m Moved
	for _, id := range ids {
		var size int
		done, err := s.withContent(ctx, id, func(tx *sqlx.Tx, sum []byte) (bool, error) {
			var data []byte
			err := tx.GetContext(ctx, &data, `SELECT data FROM files WHERE id = $1 AND data IS NOT NULL FOR UPDATE`, id)
			if errors.Is(err, sql.ErrNoRows) {
				return false, nil // moved meanwhile (another run)
			}
			if err != nil {
				return false, err
			}
			dataKey, sealed, err := s.keys.newDataKey(sum)
			if err != nil {
				return false, err
			}
			if err := s.putSealed(ctx, sum, dataKey, data); err != nil {
				return false, err
			}
			size = len(data)
			_, err = tx.ExecContext(ctx, `
				UPDATE files SET data = NULL, key_id = $2, sealed_key = $3, stored_at = now() WHERE id = $1`, id, s.keys.Current, sealed)
			return true, err
		})
		if err != nil {
			return m, fmt.Errorf("migrate file %s: %w", id, err)
		}
		if done {
			m.Files++
			m.Bytes += int64(size)
		}
	}
	err := s.db.GetContext(ctx, &m.Left, `SELECT count(*) FROM files WHERE data IS NOT NULL`)
	return m, err
}

// Rekey re-seals, with the current key, up to limit data keys sealed with
// another (after a key-encryption key was added in front of
// ZIKAO_FILE_KEYS). The objects are not rewritten. Once Left is 0 the old
// key can leave the settings.
func (s *Store) Rekey(ctx context.Context, limit int) (Moved, error) {
	var rows []row
	err := s.db.SelectContext(ctx, &rows, `
		SELECT id, size, sha256, key_id, sealed_key FROM files WHERE key_id <> $1 ORDER BY id LIMIT $2`, s.keys.Current, limit)
	if err != nil {
		return Moved{}, fmt.Errorf("find files to re-seal: %w", err)
	}
	var m Moved
	for _, r := range rows {
		sealed, err := s.keys.reseal(*r.KeyID, r.SealedKey, r.Sum)
		if err != nil {
			return m, fmt.Errorf("re-seal file %s: %w", r.ID, err)
		}
		done, err := changedOne(s.db.ExecContext(ctx, `UPDATE files SET key_id = $2, sealed_key = $3 WHERE id = $1 AND key_id = $4 AND sealed_key = $5`,
			r.ID, s.keys.Current, sealed, *r.KeyID, r.SealedKey)) // unless stored again meanwhile
		if err != nil {
			return m, fmt.Errorf("re-seal file %s: %w", r.ID, err)
		}
		if done {
			m.Files++
			m.Bytes += int64(r.Size)
		}
	}
	err = s.db.GetContext(ctx, &m.Left, `SELECT count(*) FROM files WHERE key_id <> $1`, s.keys.Current)
	return m, err
}
