package files

import (
	"context"
	"fmt"
	"time"
)

// Kinds of files, as the access records name them.
const (
	KindIDCardPhoto = "id_card_photo"
	KindVideo       = "video"
	KindPortrait    = "portrait"
	KindOnsitePhoto = "onsite_photo"
	KindReport      = "report"
)

// Access is one fetch of a file by staff.
type Access struct {
	At             time.Time `db:"at" json:"at"`
	ByAccount      string    `db:"by_account" json:"by_account"` // the login name
	RegistrationID string    `db:"registration_id" json:"registration_id"`
	Kind           string    `db:"kind" json:"kind"`
}

// RecordAccess records that staff account fetched a registration's file of
// a kind.
func (s *Store) RecordAccess(ctx context.Context, accountID int64, registrationID, kind string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO file_accesses (account_id, registration_id, kind) VALUES ($1, $2, $3)`,
		accountID, registrationID, kind)
	if err != nil {
		return fmt.Errorf("record a file access: %w", err)
	}
	return nil
}

// Accesses lists the newest accesses (of one registration, when
// registrationID is not empty), at most limit.
func (s *Store) Accesses(ctx context.Context, registrationID string, limit int) ([]Access, error) {
	out := []Access{}
	err := s.db.SelectContext(ctx, &out, `
		SELECT fa.at, a.login_name AS by_account, fa.registration_id, fa.kind
		FROM file_accesses fa JOIN accounts a ON a.id = fa.account_id
		WHERE $1 = '' OR fa.registration_id = NULLIF($1, '')::uuid
		ORDER BY fa.at DESC, fa.id DESC LIMIT $2`, registrationID, limit)
	if err != nil {
		return nil, fmt.Errorf("list file accesses: %w", err)
	}
	return out, nil
}
