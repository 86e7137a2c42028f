// Package activities holds the registration workflow's activities. Each is
// idempotent: retried after a crash or a timeout, it has the same effect.
package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"zikao/internal/db"
	"zikao/internal/registrations"
)

// DiplomaRegistry answers whether a person holds an associate diploma or higher.
type DiplomaRegistry interface {
	HasDiploma(ctx context.Context, idNumber, name string) (bool, error)
}

// Activities are the registration workflow's activities.
type Activities struct {
	Registrations *registrations.Store
	Diplomas      DiplomaRegistry
}

// permanent marks the errors that retrying cannot mend: the registration is
// gone from the read model, or the ticket numbers of its area are used up.
//
// A file a step refers to that is gone (a foreign key of the files) is
// permanent too: the decision fails instead of holding its registration for
// ever.
func permanent(err error) error {
	if errors.Is(err, registrations.ErrNotFound) || errors.Is(err, registrations.ErrTicketsExhausted) || db.IsForeignKeyViolation(err) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "permanent", err)
	}
	return err
}

// CheckDiploma asks the national diploma registry (学信网) whether the
// applicant of a registration holds an associate diploma or higher. Personal
// data is read here from PostgreSQL, so it never enters workflow history.
func (a *Activities) CheckDiploma(ctx context.Context, registrationID string) (bool, error) {
	p, err := a.Registrations.PersonalOf(ctx, registrationID)
	if err != nil {
		return false, permanent(err)
	}
	found, err := a.Diplomas.HasDiploma(ctx, p.IDNumber, p.Name)
	if err != nil {
		return false, fmt.Errorf("diploma check of registration %s: %w", registrationID, err)
	}
	return found, nil
}

// Record writes a change of status to the read model.
func (a *Activities) Record(ctx context.Context, t registrations.Transition) error {
	return permanent(a.Registrations.Record(ctx, t))
}

// Complete records the on-site confirmation and issues the admission
// ticket number (once; a retry issues nothing more). The number stays in
// PostgreSQL: it is not the activity's result, so it never enters history.
func (a *Activities) Complete(ctx context.Context, c registrations.Completion) error {
	_, err := a.Registrations.Complete(ctx, c)
	return permanent(err)
}

// ChangeWindow records a registration's new confirmation window.
func (a *Activities) ChangeWindow(ctx context.Context, w registrations.WindowChange) error {
	return permanent(a.Registrations.ChangeWindow(ctx, w))
}
