package files

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Retention says how long files are kept once the registration that
// refers to them has ended. A file is purged (its bytes deleted, its row
// kept and marked, so that a fetch answers 410) when every reference to it
// has passed its period; a registration's photo (the portrait or on-site
// photo of a completed registration, used on exam notices) is never purged.
type Retention struct {
	// Online: the ID card photos, videos and portraits of online
	// verification's tries, after the registration ended.
	Online time.Duration
	// Reports: diploma reports of registrations ended without completion,
	// after they ended (a completed registration keeps its report).
	Reports time.Duration
}

// due is the SQL condition of a file f whose bytes retention deletes now
// ($1: Online, $2: Reports, in seconds). An upload of the same content in
// the last day keeps it (its request may be about to refer to it).
const due = `f.purged_at IS NULL AND f.created_at < now() - interval '1 day'
	AND (EXISTS (SELECT 1 FROM diploma_reports d WHERE d.file_id = f.id)
	     OR EXISTS (SELECT 1 FROM online_tries t WHERE f.id IN (t.id_card_photo_file_id, t.video_file_id, t.portrait_file_id)))
	AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.photo_file_id = f.id)
	AND NOT EXISTS (SELECT 1 FROM diploma_reports d JOIN registrations r ON r.id = d.registration_id
	    WHERE d.file_id = f.id
	      AND NOT (r.status IN ('expired', 'withdrawn', 'annulled') AND r.updated_at < now() - make_interval(secs => $2)))
	AND NOT EXISTS (SELECT 1 FROM online_tries t JOIN registrations r ON r.id = t.registration_id
	    WHERE f.id IN (t.id_card_photo_file_id, t.video_file_id, t.portrait_file_id)
	      AND NOT (r.status IN ('completed', 'expired', 'withdrawn', 'annulled') AND r.updated_at < now() - make_interval(secs => $1)))`

// Purged is what one batch of PurgeDue did.
type Purged struct {
	Files int    // files whose bytes were deleted
	Last  string // the id to go on after (empty: the end was reached)
}

// PurgeDue purges up to limit due files with ids after `after` (in id
// order, so that a run pages through the table once). Running it twice
// purges nothing twice: a purged file is no longer due.
func (s *Store) PurgeDue(ctx context.Context, r Retention, after string, limit int) (Purged, error) {
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `
		SELECT f.id FROM files f WHERE `+due+` AND f.id > $3 ORDER BY f.id LIMIT $4`,
		r.Online.Seconds(), r.Reports.Seconds(), after, limit)
	if err != nil {
		return Purged{}, fmt.Errorf("find files due for purging: %w", err)
	}
	var p Purged
	for _, id := range ids {
		done, err := s.drop(ctx, id, func(tx *sqlx.Tx) (bool, error) {
			return purgeIf(ctx, tx, id, r)
		})
		if err != nil {
			return p, fmt.Errorf("purge file %s: %w", id, err)
		}
		if done {
			p.Files++
		}
		p.Last = id
	}
	if len(ids) < limit {
		p.Last = ""
	}
	return p, nil
}

// purgeIf marks a due file purged, in tx holding its content's lock,
// checking again that it is due; its data key goes with its bytes.
func purgeIf(ctx context.Context, tx *sqlx.Tx, id string, r Retention) (bool, error) {
	return changedOne(tx.ExecContext(ctx, `
		UPDATE files f SET purged_at = now(), data = NULL, key_id = NULL, sealed_key = NULL, stored_at = NULL
		WHERE f.id = $3 AND `+due, r.Online.Seconds(), r.Reports.Seconds(), id))
}
