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

// FileAccesses lists the newest fetches of files by staff (of one
// registration, when registrationID is not empty), for administrators.
func (s *Service) FileAccesses(ctx context.Context, who accounts.Account, registrationID string, limit int) ([]files.Access, error) {
	if who.Role != accounts.RoleAdmin {
		return nil, refuse(CodeForbidden)
	}
	if registrationID != "" && uuid.Validate(registrationID) != nil {
		f := Fields{}
		f.Add("registration_id", "注册编号格式不正确", "not a registration id")
		return nil, f.Err()
	}
	out, err := s.Files.Accesses(ctx, registrationID, limit)
	return out, unavailable(err)
}
