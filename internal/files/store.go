package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"zikao/internal/db"
)

// Store keeps files: the bytes, encrypted, in the object store; the
// metadata (type, size, digest, sealed data key) in PostgreSQL. Files
// written before the object store (data in PostgreSQL) are read from there
// until `zikao files migrate` moves them.
type Store struct {
	db      *sqlx.DB
	objects *Objects // nil: none configured, uploads fail
	keys    Keys
	uploads chan struct{} // a slot per upload in progress (MaxUploads)
}

// MaxUploads bounds the uploads a Store runs at once: each holds a
// PostgreSQL connection while its object is put (the row's transaction),
// so a slow object store must not take the whole pool (20).
const MaxUploads = 8

// NewStore returns a Store over db and the object store, sealing new files'
// data keys with the current key of keys.
func NewStore(db *sqlx.DB, objects *Objects, keys Keys) *Store {
	return &Store{db: db, objects: objects, keys: keys, uploads: make(chan struct{}, MaxUploads)}
}

// Objects is the object store (nil when none is configured).
func (s *Store) Objects() *Objects { return s.objects }

// row is a file's row.
type row struct {
	File
	Sum       []byte     `db:"sha256"`
	KeyID     *string    `db:"key_id"`
	SealedKey []byte     `db:"sealed_key"`
	PurgedAt  *time.Time `db:"purged_at"`
}

// lockContent serializes, in a transaction, whatever writes or deletes the
// object of a content: two uploads of the same bytes, an upload and a
// purge. (The two-key form of PostgreSQL's advisory locks, apart from the
// one-key locks used elsewhere.)
func lockContent(ctx context.Context, tx *sqlx.Tx, sum []byte) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(17, $1)`, int32(binary.BigEndian.Uint32(sum)))
	return err
}

// Put stores data and returns its id; the same content stored twice keeps
// one copy and one id. The bytes reach the object store, sealed, in the
// transaction that writes the row: when the store fails, nothing is
// written and Put fails with ErrUnavailable. A purged content uploaded
// again is stored again under its old id. Each Put counts as an upload
// pending until its request discards it (Discard); an upload that
// something came to refer to is never discarded, and stays counted (a
// referenced file is kept anyway).
func (s *Store) Put(ctx context.Context, data []byte, contentType string) (string, error) {
	if s.objects == nil {
		return "", fmt.Errorf("%w: no object store configured", ErrUnavailable)
	}
	select {
	case s.uploads <- struct{}{}:
		defer func() { <-s.uploads }()
	case <-ctx.Done():
		return "", fmt.Errorf("%w: waiting for an upload slot: %w", ErrUnavailable, ctx.Err())
	}
	sum := sha256.Sum256(data)
	var id string
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := lockContent(ctx, tx, sum[:]); err != nil {
			return err
		}
		var held row
		err := tx.GetContext(ctx, &held, `
			UPDATE files SET created_at = now(), pending = pending + 1 WHERE sha256 = $1 AND purged_at IS NULL
			RETURNING id, data, key_id, sealed_key`, sum[:])
		if err == nil {
			id = held.ID
			if held.Data != nil {
				return nil // in PostgreSQL (an older release's, not migrated yet)
			}
			return s.heal(ctx, sum[:], data, held) // stored already: its object is checked
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		dataKey, sealed, err := s.keys.newDataKey(sum[:])
		if err != nil {
			return err
		}
		err = tx.GetContext(ctx, &id, `
			INSERT INTO files (id, sha256, content_type, size, pending, key_id, sealed_key, stored_at)
			VALUES ($1, $2, $3, $4, 1, $5, $6, now())
			ON CONFLICT (sha256) DO UPDATE SET created_at = now(), pending = files.pending + 1, purged_at = NULL,
			    key_id = EXCLUDED.key_id, sealed_key = EXCLUDED.sealed_key, stored_at = now()
			RETURNING id`, uuid.NewString(), sum[:], contentType, len(data), s.keys.Current, sealed)
		if err != nil {
			return err
		}
		return s.putSealed(ctx, sum[:], dataKey, data)
	})
	if err != nil {
		return "", fmt.Errorf("store file: %w", err)
	}
	return id, nil
}

// heal puts again, sealed with the row's data key, the object of content
// sum that a row holds as stored when the store has lost it (a fault
// outside zikao, a bucket restored from an older backup).
func (s *Store) heal(ctx context.Context, sum, data []byte, held row) error {
	key := ObjectKey(sum)
	if ok, err := s.objects.exists(ctx, key); ok || err != nil {
		return err
	}
	dataKey, err := s.keys.dataKey(*held.KeyID, held.SealedKey, sum)
	if err != nil {
		return err
	}
	return s.putSealed(ctx, sum, dataKey, data)
}

// putSealed puts the object of content sum: data sealed with dataKey.
func (s *Store) putSealed(ctx context.Context, sum, dataKey, data []byte) error {
	enc, err := encrypt(dataKey, data, sum)
	if err != nil {
		return err
	}
	return s.objects.put(ctx, ObjectKey(sum), enc)
}

// Get returns a stored file: ErrNotFound when there is none of that id,
// ErrPurged when retention deleted its bytes, ErrUnavailable when the
// object store does not answer.
func (s *Store) Get(ctx context.Context, id string) (File, error) {
	r, err := s.row(ctx, id)
	if err != nil {
		return File{}, err
	}
	if r.Data != nil {
		return r.File, nil // written before the object store, not migrated yet
	}
	if s.objects == nil {
		return File{}, fmt.Errorf("%w: no object store configured", ErrUnavailable)
	}
	enc, err := s.objects.get(ctx, ObjectKey(r.Sum))
	if err != nil {
		if _, again := s.row(ctx, id); errors.Is(again, ErrPurged) || errors.Is(again, ErrNotFound) {
			return File{}, again // purged while it was read
		}
		return File{}, fmt.Errorf("file %s: %w", id, err)
	}
	dataKey, err := s.keys.dataKey(*r.KeyID, r.SealedKey, r.Sum)
	if err != nil {
		return File{}, fmt.Errorf("file %s: %w", id, err)
	}
	if r.Data, err = decrypt(dataKey, enc, r.Sum); err != nil {
		return File{}, fmt.Errorf("file %s: %w", id, err)
	}
	if sum := sha256.Sum256(r.Data); !bytes.Equal(sum[:], r.Sum) {
		return File{}, fmt.Errorf("file %s: content does not match its digest", id)
	}
	return r.File, nil
}

// row reads a file's row; a purged file is ErrPurged.
func (s *Store) row(ctx context.Context, id string) (row, error) {
	var r row
	if uuid.Validate(id) != nil {
		return r, ErrNotFound
	}
	err := s.db.GetContext(ctx, &r, `
		SELECT id, content_type, size, data, sha256, key_id, sealed_key, purged_at FROM files WHERE id = $1`, id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return r, ErrNotFound
	case err != nil:
		return r, fmt.Errorf("read file %s: %w", id, err)
	case r.PurgedAt != nil:
		return r, ErrPurged
	}
	return r, nil
}

// ContentType returns the content type of a stored file, without its data.
func (s *Store) ContentType(ctx context.Context, id string) (string, error) {
	var ct string
	if uuid.Validate(id) != nil {
		return ct, ErrNotFound
	}
	err := s.db.GetContext(ctx, &ct, `SELECT content_type FROM files WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return ct, ErrNotFound
	}
	if err != nil {
		return ct, fmt.Errorf("read the type of file %s: %w", id, err)
	}
	return ct, nil
}

// Discard ends one upload of a file (a refused upload's) and removes the
// file when no other upload of the same content is pending and nothing
// refers to it; one that a report, a registration or a try uses stays. (A
// request that never discards, having died, leaves its file to
// DiscardOrphans.)
func (s *Store) Discard(ctx context.Context, id string) error {
	_, err := s.drop(ctx, id, func(tx *sqlx.Tx) (bool, error) {
		var pending int
		err := tx.GetContext(ctx, &pending, `UPDATE files SET pending = GREATEST(pending - 1, 0) WHERE id = $1 RETURNING pending`, id)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && pending > 0) {
			return false, nil // gone already, or another request's upload of the same bytes is under way
		}
		if err != nil {
			return false, err
		}
		return deleteIf(ctx, tx, unreferenced, id)
	})
	if err != nil {
		return fmt.Errorf("discard file %s: %w", id, err)
	}
	return nil
}

// deleteIf deletes, in tx (which holds the content's lock), the row of file
// $1 when cond (SQL over f, with args from $2) holds.
func deleteIf(ctx context.Context, tx *sqlx.Tx, cond string, args ...any) (bool, error) {
	return changedOne(tx.ExecContext(ctx, `DELETE FROM files f WHERE f.id = $1 AND `+cond, args...))
}

// changedOne reports whether a statement changed one row.
func changedOne(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// drop runs change (the deletion or purge of file id's row, in a
// transaction holding its content's lock) and, once that has committed,
// removes the content's object unless a row holds it again meanwhile. The
// row goes first: a removal cut short leaves unreadable ciphertext (its
// data key went with the row), never a row without its bytes.
func (s *Store) drop(ctx context.Context, id string, change func(tx *sqlx.Tx) (bool, error)) (bool, error) {
	var sum []byte
	done, err := s.withContent(ctx, id, func(tx *sqlx.Tx, got []byte) (bool, error) {
		sum = got
		return change(tx)
	})
	if err != nil || !done || s.objects == nil {
		return done, err
	}
	return true, db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := lockContent(ctx, tx, sum); err != nil {
			return err
		}
		var held bool
		if err := tx.GetContext(ctx, &held, `SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = $1 AND stored_at IS NOT NULL)`, sum); err != nil || held {
			return err
		}
		return s.objects.remove(ctx, ObjectKey(sum))
	})
}

// unreferenced is the SQL condition of a file f that no report, registration
// (its photo) or try of online verification refers to.
const unreferenced = `NOT EXISTS (SELECT 1 FROM diploma_reports d WHERE d.file_id = f.id)
	AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.photo_file_id = f.id)
	AND NOT EXISTS (SELECT 1 FROM online_tries t WHERE f.id IN (t.id_card_photo_file_id, t.video_file_id, t.portrait_file_id))`

// orphaned is the SQL condition of a file nothing has referred to for
// longer than $2 seconds; one with an upload pending (Put, not discarded:
// a decision Temporal may still deliver to its workflow, e.g. after a long
// worker outage) is kept a day.
const orphaned = `f.created_at < now() - make_interval(secs => $2)
	AND (f.pending = 0 OR f.created_at < now() - interval '1 day') AND ` + unreferenced

// DiscardOrphans removes, in batches, the files nothing has referred to for
// longer than age (uploads whose request died before the workflow refused
// them), and their objects.
func (s *Store) DiscardOrphans(ctx context.Context, age time.Duration) (int64, error) {
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `SELECT id FROM files f WHERE f.id <> $1 AND `+orphaned+` LIMIT 1000`, uuid.Nil, age.Seconds())
	if err != nil {
		return 0, fmt.Errorf("discard orphaned files: %w", err)
	}
	var n int64
	for _, id := range ids {
		done, err := s.drop(ctx, id, func(tx *sqlx.Tx) (bool, error) {
			return deleteIf(ctx, tx, orphaned, id, age.Seconds())
		})
		if err != nil {
			return n, fmt.Errorf("discard orphaned file %s: %w", id, err)
		}
		if done {
			n++
		}
	}
	return n, nil
}

// withContent runs fn in a transaction holding the lock of file id's
// content; a file gone meanwhile is (false, nil).
func (s *Store) withContent(ctx context.Context, id string, fn func(tx *sqlx.Tx, sum []byte) (bool, error)) (bool, error) {
	var sum []byte
	err := s.db.GetContext(ctx, &sum, `SELECT sha256 FROM files WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var done bool
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := lockContent(ctx, tx, sum); err != nil {
			return err
		}
		var err error
		done, err = fn(tx, sum)
		return err
	})
	return done, err
}
