package chaos

import (
	"context"
	"crypto/sha256"
	"fmt"

	"zikao/internal/files"
)

// checkFiles: every file a registration refers to (its report, its photo,
// its tries' three files) is in the object store, whole: fetched through
// the file store (the bucket's object opened with its sealed key) its
// bytes have the digest PostgreSQL recorded at upload; none was written to
// PostgreSQL. The content-addressed keys make a duplicate impossible (one
// row and one object per content); objects whose row a fault rolled back
// are counted, not failed (their ciphertext is unreadable without a row).
func checkFiles(ctx context.Context, s *stack) (*Invariant, error) {
	inv := &Invariant{Name: "files: every referenced file in the object store, byte-identical by digest, none in PostgreSQL"}
	objects, err := s.s3.Objects(s3Bucket)
	if err != nil {
		return nil, err
	}
	store := files.NewStore(s.db, objects, files.MustParseKeys(files.DevKeys))
	var rows []struct {
		ID         string `db:"id"`
		Sum        []byte `db:"sha256"`
		InDatabase bool   `db:"in_database"`
	}
	err = s.db.SelectContext(ctx, &rows, `
		SELECT f.id::text, f.sha256, f.data IS NOT NULL AS in_database FROM files f
		WHERE f.id IN (SELECT file_id FROM diploma_reports UNION SELECT photo_file_id FROM registrations
		               UNION SELECT id_card_photo_file_id FROM online_tries UNION SELECT video_file_id FROM online_tries
		               UNION SELECT portrait_file_id FROM online_tries)`)
	if err != nil {
		return nil, fmt.Errorf("read the referenced files: %w", err)
	}
	for _, r := range rows {
		if r.InDatabase {
			inv.Failed = append(inv.Failed, fmt.Sprintf("file %s: its bytes are in PostgreSQL", r.ID))
			continue
		}
		f, err := store.Get(ctx, r.ID)
		if err != nil {
			inv.Failed = append(inv.Failed, fmt.Sprintf("file %s: %v", r.ID, err))
			continue
		}
		if sum := sha256.Sum256(f.Data); string(sum[:]) != string(r.Sum) {
			inv.Failed = append(inv.Failed, fmt.Sprintf("file %s: its bytes do not have the recorded digest", r.ID))
		}
	}
	var stored int
	if err := s.db.GetContext(ctx, &stored, `SELECT count(*) FROM files WHERE stored_at IS NOT NULL`); err != nil {
		return nil, err
	}
	n, err := objects.Count(ctx)
	if err != nil {
		return nil, err
	}
	if n < stored {
		inv.Failed = append(inv.Failed, fmt.Sprintf("%d objects for %d stored files", n, stored))
	}
	inv.Figures = fmt.Sprintf("%d referenced files read back whole; %d stored files, %d objects (%d without a row: uploads a fault rolled back)",
		len(rows), stored, n, max(n-stored, 0))
	return inv, nil
}
