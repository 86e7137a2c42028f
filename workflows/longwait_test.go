package workflows_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/workflows"
)

// starts counts an activity's starts, local and regular.
type starts struct{ local, regular atomic.Int32 }

func (s *scenario) countStarts(name string) *starts {
	var n starts
	s.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		if info.ActivityType.Name == name {
			n.local.Add(1)
		}
	})
	s.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == name {
			n.regular.Add(1)
		}
	})
	return &n
}

// A read-model write that keeps failing (PostgreSQL away for three minutes
// under the on-site check: the test suite stops retrying after ten tries) is
// tried three times as a local activity, then waits as a regular activity,
// retried by the server, and the registration completes once it succeeds.
func TestLongWaitGoesOnAsAnActivity(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "韩廿七", inWindow)
	var since time.Time
	s.env.OnActivity("Complete", mock.Anything, mock.Anything).Return(func(ctx context.Context, c registrations.Completion) error {
		if since.IsZero() {
			since = s.env.Now()
		}
		if s.env.Now().Sub(since) < 3*time.Minute {
			return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
		}
		_, err := store.Complete(ctx, c)
		return err
	})
	n := s.countStarts("Complete")
	out := s.run(step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo})
	s.wantTicket(out)
	s.wantHistory(status.PreRegistered, status.Completed)
	if got := n.local.Load(); got != 3 {
		t.Errorf("%d local tries of Complete, want 3", got)
	}
	if got := n.regular.Load(); got < 5 {
		t.Errorf("%d tries of Complete as a regular activity, want at least 5 in three minutes", got)
	}
}

// A permanent failure is not retried, locally or as an activity: the
// workflow fails as before.
func TestPermanentFailureIsNotRetried(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "韩廿六", inWindow)
	s.env.OnActivity("Record", mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError("registration gone", "permanent", nil))
	n := s.countStarts("Record")
	s.env.ExecuteWorkflow(workflows.Registration, s.in)
	if err := s.env.GetWorkflowError(); err == nil {
		t.Fatal("the workflow succeeded with a permanent failure of its write")
	}
	if l, r := n.local.Load(), n.regular.Load(); l != 1 || r != 0 {
		t.Errorf("%d local and %d regular tries, want 1 and 0", l, r)
	}
}

// A diploma registry that stays down: the question waits as a regular
// activity after its local tries, and when it gives up the applicant is
// asked for a report.
func TestRegistryDownAsksForAReport(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "韩廿八", inWindow)
	s.registryDown()
	n := s.countStarts("CheckDiploma")
	out := s.run(step{after: 2 * time.Hour, update: workflows.UpdateWithdraw})
	if out.Status != status.Withdrawn {
		t.Fatalf("result %+v, want withdrawn", out)
	}
	s.wantHistory(status.DiplomaCheck, status.AwaitingReport, status.Withdrawn)
	if h := s.readModel().History[1]; !strings.Contains(h.Note, "学信网暂时无法查询") {
		t.Errorf("awaiting_report note %q, want the registry's outage named", h.Note)
	}
	if l, r := n.local.Load(), n.regular.Load(); l != 3 || r < 2 {
		t.Errorf("%d local and %d regular questions, want 3 and then the regular activity's", l, r)
	}
}
