package registering

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"zikao/internal/accounts"
	"zikao/internal/files"
)

// fetch returns the file fileID of registration registrationID, of a kind
// (files.Kind…), to who, who may see it; a fetch by staff is recorded
// (access to sensitive personal data is recorded), and a file that
// retention purged is refused with file_purged. The bytes go only once
// the record is written.
func (s *Service) fetch(ctx context.Context, who accounts.Account, registrationID, kind, fileID string) (files.File, error) {
	f, err := s.Files.Get(ctx, fileID)
	if errors.Is(err, files.ErrPurged) {
		return files.File{}, refuse(CodeFilePurged)
	}
	if err != nil {
		return files.File{}, unavailable(err)
	}
	if who.Role != accounts.RoleApplicant {
		if err := s.Files.RecordAccess(ctx, who.ID, registrationID, kind); err != nil {
			return files.File{}, unavailable(err)
		}
	}
	return f, nil
}

// How many accesses FileAccesses lists at once: by default, at most.
const DefaultFileAccesses, MaxFileAccesses = 100, 500

// FileAccesses lists the newest fetches of files by staff (of one
// registration, when registrationID is not empty), at most limit (0:
// DefaultFileAccesses), for administrators.
func (s *Service) FileAccesses(ctx context.Context, who accounts.Account, registrationID string, limit int) ([]files.Access, error) {
	if who.Role != accounts.RoleAdmin {
		return nil, refuse(CodeForbidden)
	}
	f := Fields{}
	if registrationID != "" && uuid.Validate(registrationID) != nil {
		f.Add("registration_id", "注册编号格式不正确", "not a registration id")
	}
	if limit == 0 {
		limit = DefaultFileAccesses
	}
	if limit < 1 || limit > MaxFileAccesses {
		f.Add("limit", "须为 1 至 500", "must be 1 to 500")
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	out, err := s.Files.Accesses(ctx, registrationID, limit)
	return out, unavailable(err)
}
