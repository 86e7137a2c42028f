// Package files stores uploaded files (diploma reports, on-site photos) in
// PostgreSQL, once per content, and refers to them by id. Workflows only
// ever see the id.
package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"zikao/internal/db"
)

// MaxSize is the largest file accepted: 5 MiB.
const MaxSize = 5 << 20

// Content types accepted somewhere.
const (
	PDF  = "application/pdf"
	JPEG = "image/jpeg"
	PNG  = "image/png"
)

var (
	// ErrTooLarge: the file is larger than MaxSize.
	ErrTooLarge = errors.New("file too large")
	// ErrType: the content is none of the accepted types.
	ErrType = errors.New("file type not accepted")
	// ErrEmpty: the file has no content.
	ErrEmpty = errors.New("file is empty")
	// ErrNotFound: no file with that id.
	ErrNotFound = errors.New("file not found")
)

// File is a stored file.
type File struct {
	ID          string `db:"id"`
	ContentType string `db:"content_type"`
	Size        int    `db:"size"`
	Data        []byte `db:"data"`
}

// Read reads at most MaxSize bytes of r and checks by content (not by name
// or declared type) that it is one of the accepted types.
func Read(r io.Reader, accepted ...string) ([]byte, string, error) {
	return ReadMax(r, MaxSize, accepted...)
}

// Store keeps files in PostgreSQL.
type Store struct{ db *sqlx.DB }

// NewStore returns a Store over db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

// Put stores data and returns its id; the same content stored twice keeps
// one copy and one id. Each Put counts as an upload pending until its
// request discards it (Discard); an upload that something came to refer to
// is never discarded, and stays counted (a referenced file is kept anyway).
func (s *Store) Put(ctx context.Context, data []byte, contentType string) (string, error) {
	sum := sha256.Sum256(data)
	var id string
	err := s.db.GetContext(ctx, &id, `
		INSERT INTO files (id, sha256, content_type, size, data, pending) VALUES ($1, $2, $3, $4, $5, 1)
		ON CONFLICT (sha256) DO UPDATE SET created_at = now(), pending = files.pending + 1 RETURNING id`,
		uuid.NewString(), sum[:], contentType, len(data), data)
	if err != nil {
		return "", fmt.Errorf("store file: %w", err)
	}
	return id, nil
}

// Get returns a stored file.
func (s *Store) Get(ctx context.Context, id string) (File, error) {
	var f File
	if uuid.Validate(id) != nil {
		return f, ErrNotFound
	}
	err := s.db.GetContext(ctx, &f, `SELECT id, content_type, size, data FROM files WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return f, ErrNotFound
	}
	if err != nil {
		return f, fmt.Errorf("read file %s: %w", id, err)
	}
	return f, nil
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
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var pending int
		err := tx.GetContext(ctx, &pending, `UPDATE files SET pending = GREATEST(pending - 1, 0) WHERE id = $1 RETURNING pending`, id)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && pending > 0) {
			return nil // gone already, or another request's upload of the same bytes is under way
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			DELETE FROM files f WHERE f.id = $1 AND `+unreferenced, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("discard file %s: %w", id, err)
	}
	return nil
}

// unreferenced is the SQL condition of a file f that no report, registration
// (its photo) or try of online verification refers to.
const unreferenced = `NOT EXISTS (SELECT 1 FROM diploma_reports d WHERE d.file_id = f.id)
	AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.photo_file_id = f.id)
	AND NOT EXISTS (SELECT 1 FROM online_tries t WHERE f.id IN (t.id_card_photo_file_id, t.video_file_id, t.portrait_file_id))`

// DiscardOrphans removes the files nothing has referred to for longer than
// age (uploads whose request died before the workflow refused them). A file
// with an upload pending (Put, not discarded: a decision Temporal may still
// deliver to its workflow, e.g. after a long worker outage) is kept a day.
func (s *Store) DiscardOrphans(ctx context.Context, age time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, `
		DELETE FROM files f WHERE f.created_at < now() - make_interval(secs => $1)
		  AND (f.pending = 0 OR f.created_at < now() - interval '1 day') AND `+unreferenced, age.Seconds())
	if err != nil {
		return 0, fmt.Errorf("discard orphaned files: %w", err)
	}
	return res.RowsAffected()
}

// Video types accepted for online verification's video.
const (
	MP4  = "video/mp4"
	WebM = "video/webm"
)

// ReadMax reads at most max bytes of r and checks by content that it is
// one of the accepted types (Read, with another limit). Videos are told by
// their first box or header: MP4 (ISO base media, any brand) has ftyp at
// bytes 4–7, WebM (Matroska) starts with the EBML magic 1A 45 DF A3.
func ReadMax(r io.Reader, max int, accepted ...string) ([]byte, string, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, "", fmt.Errorf("read upload: %w", err)
	}
	if len(data) > max {
		return nil, "", ErrTooLarge
	}
	if len(data) == 0 {
		return nil, "", ErrEmpty
	}
	ct := sniff(data)
	for _, a := range accepted {
		if ct == a {
			return data, ct, nil
		}
	}
	return nil, "", ErrType
}

func sniff(data []byte) string {
	switch {
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		return MP4
	case bytes.HasPrefix(data, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		return WebM
	}
	return http.DetectContentType(data)
}
