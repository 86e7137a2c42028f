package registrations

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"zikao/internal/db"
)

// Online is the state of a registration's online identity verification
// (网上验证) as its workflow holds it.
type Online struct {
	TriesLeft      int    // 3 at first; a face mismatch or failed liveness uses one
	Closed         bool   // no more tries: three failures, not in the records, or a refused manual check
	LastResult     string // the last try's result ("" before the first)
	ReviewAsked    bool   // the manual check (人工核验) was asked for (once)
	ReviewReasonID string // the office's reason (decision_reasons) when it refused the manual check
}

// Try is one try of online verification: the challenge it used, the
// identity service's result, and its three files (ids only).
type Try struct {
	ChallengeID   string
	Result        string
	IDCardPhotoID string
	VideoID       string
	PortraitID    string
}

// writeOnline writes the online verification's state and the try of step
// seq, in the transaction that recorded that step (the registration's row
// is at seq).
func writeOnline(ctx context.Context, tx *sqlx.Tx, id string, seq int, at time.Time, o *Online, t *Try) error {
	if o != nil {
		var result *string
		if o.LastResult != "" {
			result = &o.LastResult
		}
		_, err := tx.ExecContext(ctx, `
			UPDATE registrations SET online_tries_left = $3, online_closed = $4, online_last_result = $5,
				identity_review_asked = $6,
				identity_review_reason = (SELECT text FROM decision_reasons WHERE id = NULLIF($7, '')::uuid)
			WHERE id = $1 AND last_seq = $2`, id, seq, o.TriesLeft, o.Closed, result, o.ReviewAsked, o.ReviewReasonID)
		if err != nil {
			return fmt.Errorf("record online verification of %s: %w", id, err)
		}
	}
	if t != nil {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO online_tries (registration_id, seq, challenge_id, result, id_card_photo_file_id, video_file_id, portrait_file_id, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
			id, seq, t.ChallengeID, t.Result, t.IDCardPhotoID, t.VideoID, t.PortraitID, at)
		if err != nil {
			return fmt.Errorf("record online try of %s: %w", id, err)
		}
	}
	return nil
}

// Recorded reports whether the Workflow Update updateID has recorded a step
// of the registration.
func (s *Store) Recorded(ctx context.Context, id, updateID string) (bool, error) {
	var found bool
	err := s.db.GetContext(ctx, &found, `SELECT EXISTS (SELECT 1 FROM registration_history WHERE registration_id = $1 AND update_id = $2)`, id, updateID)
	if err != nil {
		return false, fmt.Errorf("look up step %s of %s: %w", updateID, id, err)
	}
	return found, nil
}

// LastTry returns the files of a registration's last recorded try.
func (s *Store) LastTry(ctx context.Context, id string) (Try, error) {
	var t struct {
		ChallengeID string `db:"challenge_id"`
		Result      string `db:"result"`
		IDCard      string `db:"id_card_photo_file_id"`
		Video       string `db:"video_file_id"`
		Portrait    string `db:"portrait_file_id"`
	}
	err := s.db.GetContext(ctx, &t, `SELECT challenge_id, result, id_card_photo_file_id, video_file_id, portrait_file_id
		FROM online_tries WHERE registration_id = $1 ORDER BY seq DESC LIMIT 1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Try{}, ErrNotFound
	}
	if err != nil {
		return Try{}, fmt.Errorf("read the last online try of %s: %w", id, err)
	}
	return Try{ChallengeID: t.ChallengeID, Result: t.Result, IDCardPhotoID: t.IDCard, VideoID: t.Video, PortraitID: t.Portrait}, nil
}

// Challenge is what the applicant reads aloud in the video.
type Challenge struct {
	ID        string    `db:"id"`
	Digits    string    `db:"digits"`
	ExpiresAt time.Time `db:"expires_at"`
}

// ChallengeTTL is how long a challenge stays usable.
const ChallengeTTL = 10 * time.Minute

// NewChallenge voids the registration's earlier challenges and makes a new
// one: 4 digits from a cryptographic source.
func (s *Store) NewChallenge(ctx context.Context, registrationID string) (Challenge, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(10000))
	if err != nil {
		return Challenge{}, fmt.Errorf("challenge digits: %w", err)
	}
	c := Challenge{ID: uuid.NewString(), Digits: fmt.Sprintf("%04d", n.Int64())}
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		// A claimed challenge is voided too: only the request that claimed
		// it may still use it (a retry with its key, ClaimChallenge).
		if _, err := tx.ExecContext(ctx, `UPDATE online_challenges SET voided_at = now()
			WHERE registration_id = $1 AND voided_at IS NULL`, registrationID); err != nil {
			return fmt.Errorf("void earlier challenges: %w", err)
		}
		return tx.GetContext(ctx, &c.ExpiresAt, `INSERT INTO online_challenges (id, registration_id, digits, expires_at)
			VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at`,
			c.ID, registrationID, c.Digits, ChallengeTTL.Seconds())
	})
	if err != nil {
		return Challenge{}, fmt.Errorf("new challenge of %s: %w", registrationID, err)
	}
	return c, nil
}

// ErrChallengeExpired: no usable challenge of the registration has that id
// (expired, used by another request, voided by a newer one, or another
// registration's).
var ErrChallengeExpired = errors.New("challenge expired, used or voided")

// ClaimChallenge reserves a challenge for the request updateID and returns
// its digits: a live challenge nobody claimed, or one this very request
// claimed before (a retry, even after it expired).
func (s *Store) ClaimChallenge(ctx context.Context, registrationID, challengeID, updateID string) (string, error) {
	if uuid.Validate(challengeID) != nil {
		return "", ErrChallengeExpired
	}
	var digits string
	err := s.db.GetContext(ctx, &digits, `
		UPDATE online_challenges SET claimed_by = $3, claimed_at = COALESCE(claimed_at, now())
		WHERE id = $2 AND registration_id = $1
		  AND (claimed_by = $3 OR (claimed_by IS NULL AND voided_at IS NULL AND expires_at > now()))
		RETURNING digits`, registrationID, challengeID, updateID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrChallengeExpired
	}
	if err != nil {
		return "", fmt.Errorf("claim challenge of %s: %w", registrationID, err)
	}
	return digits, nil
}

// ReleaseChallenge gives back a challenge that the request updateID
// claimed but could not use (the identity service did not answer): the
// try was not made.
func (s *Store) ReleaseChallenge(ctx context.Context, challengeID, updateID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE online_challenges SET claimed_by = NULL, claimed_at = NULL
		WHERE id = $1 AND claimed_by = $2
		  AND NOT EXISTS (SELECT 1 FROM online_tries t WHERE t.challenge_id = online_challenges.id)`, challengeID, updateID)
	if err != nil {
		return fmt.Errorf("release challenge: %w", err)
	}
	return nil
}
