package temporalsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// ScheduleReport is what EnsureSchedules found and did, by schedule id.
type ScheduleReport struct {
	Created []string
	Updated []string // their interval, workflow, arguments or task queue differed
	Present []string // as wanted already
}

// EnsureSchedules makes the namespace's schedules those wanted: it creates
// each one that is missing and updates each one whose intervals, workflow
// (type, arguments, task queue, summary) or overlap policy differ, printing
// one line each to out. An update replaces the spec and the action, and
// leaves the state alone: a schedule an operator paused stays paused. Run
// again, it changes nothing.
//
// A wanted schedule runs a workflow (its Action a *client.ScheduleWorkflowAction
// naming the workflow by its type name) at intervals (Spec.Intervals only).
func EnsureSchedules(ctx context.Context, c client.Client, out io.Writer, want ...client.ScheduleOptions) (ScheduleReport, error) {
	if out == nil {
		out = io.Discard
	}
	var r ScheduleReport
	for _, w := range want {
		if err := checkAction(w.Action); err != nil {
			return r, fmt.Errorf("schedule %s: %w", w.ID, err)
		}
		if err := ensureSchedule(ctx, c.ScheduleClient(), w, out, &r); err != nil {
			return r, fmt.Errorf("schedule %s: %w", w.ID, err)
		}
	}
	return r, nil
}

// checkAction refuses the actions EnsureSchedules cannot compare.
func checkAction(a client.ScheduleAction) error {
	w, ok := a.(*client.ScheduleWorkflowAction)
	if !ok || w == nil {
		return errors.New("its action must be a *client.ScheduleWorkflowAction")
	}
	if _, ok := w.Workflow.(string); !ok {
		return errors.New("its action must name the workflow by its type name")
	}
	return nil
}

// ensureSchedule creates or updates one schedule.
func ensureSchedule(ctx context.Context, sc client.ScheduleClient, want client.ScheduleOptions, out io.Writer, r *ScheduleReport) error {
	h := sc.GetHandle(ctx, want.ID)
	d, err := h.Describe(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		err = retry(ctx, time.Minute, func() error {
			_, err := sc.Create(ctx, want)
			return err
		})
		if err == nil {
			r.Created = append(r.Created, want.ID)
			slog.Info("schedule created", "schedule", want.ID)
			fmt.Fprintf(out, "schedule %s: created (%s)\n", want.ID, describe(want.Spec.Intervals, want.Action))
			return nil
		}
		if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			return fmt.Errorf("create: %w", err)
		}
		d, err = h.Describe(ctx) // another setup was quicker
	}
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	diff, err := differences(d.Schedule, want)
	if err != nil {
		return err
	}
	paused := ""
	if st := d.Schedule.State; st != nil && st.Paused {
		paused = fmt.Sprintf("; PAUSED, note %q", st.Note)
	}
	if len(diff) == 0 {
		r.Present = append(r.Present, want.ID)
		fmt.Fprintf(out, "schedule %s: present (%s%s)\n", want.ID, describe(want.Spec.Intervals, want.Action), paused)
		return nil
	}
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		spec := want.Spec
		s.Spec, s.Action = &spec, want.Action
		if want.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED {
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap = want.Overlap
		}
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	r.Updated = append(r.Updated, want.ID)
	slog.Info("schedule updated", "schedule", want.ID, "changed", diff)
	fmt.Fprintf(out, "schedule %s: updated (%s; now %s%s)\n", want.ID, strings.Join(diff, ", "), describe(want.Spec.Intervals, want.Action), paused)
	return nil
}

// differences lists what of the wanted schedule have lacks.
func differences(have client.Schedule, want client.ScheduleOptions) ([]string, error) {
	var diff []string
	if have.Spec == nil || !slices.Equal(have.Spec.Intervals, want.Spec.Intervals) ||
		len(have.Spec.Calendars) > 0 || len(have.Spec.CronExpressions) > 0 {
		diff = append(diff, "intervals were "+describeIntervals(have.Spec))
	}
	if want.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED && (have.Policy == nil || have.Policy.Overlap != want.Overlap) {
		diff = append(diff, "overlap policy differed")
	}
	w := want.Action.(*client.ScheduleWorkflowAction)
	h, ok := have.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		return append(diff, "action was not a workflow"), nil
	}
	if h.Workflow != w.Workflow {
		diff = append(diff, fmt.Sprintf("workflow was %v", h.Workflow))
	}
	if h.TaskQueue != w.TaskQueue {
		diff = append(diff, "task queue was "+h.TaskQueue)
	}
	if h.ID != w.ID || h.StaticSummary != w.StaticSummary {
		diff = append(diff, "workflow id or summary differed")
	}
	same, err := sameArgs(h.Args, w.Args)
	if err != nil {
		return nil, err
	}
	if !same {
		diff = append(diff, "arguments differed")
	}
	return diff, nil
}

// sameArgs compares the arguments a schedule holds (payloads) with those
// wanted, encoded as the client encodes them (the default data converter).
func sameArgs(have, want []any) (bool, error) {
	if len(have) != len(want) {
		return false, nil
	}
	for i, a := range want {
		p, err := converter.GetDefaultDataConverter().ToPayload(a)
		if err != nil {
			return false, fmt.Errorf("encode argument %d: %w", i, err)
		}
		h, ok := have[i].(*commonpb.Payload)
		if !ok || !proto.Equal(h, p) {
			return false, nil
		}
	}
	return true, nil
}

// describe tells when a schedule runs what, for the operator.
func describe(intervals []client.ScheduleIntervalSpec, a client.ScheduleAction) string {
	w := a.(*client.ScheduleWorkflowAction)
	return fmt.Sprintf("%s, workflow %v on task queue %s", describeIntervals(&client.ScheduleSpec{Intervals: intervals}), w.Workflow, w.TaskQueue)
}

// describeIntervals tells a spec's intervals (and whether it has more).
func describeIntervals(s *client.ScheduleSpec) string {
	if s == nil {
		return "none"
	}
	when := make([]string, 0, len(s.Intervals)+1)
	for _, iv := range s.Intervals {
		when = append(when, fmt.Sprintf("every %s at +%s", iv.Every, iv.Offset))
	}
	if len(s.Calendars) > 0 || len(s.CronExpressions) > 0 {
		when = append(when, "calendar times")
	}
	if len(when) == 0 {
		return "none"
	}
	return strings.Join(when, ", ")
}
