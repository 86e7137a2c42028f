// Package worker runs the registration workflow and its activities on a
// Temporal task queue, and the operational workflows beside them (window
// moves, retention).
package worker

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"zikao/activities"
	"zikao/workflows"
)

// New returns a worker for taskQueue with the registration workflow and
// acts registered, and the window move workflow with its activities
// (sending their updates through c); start it with Run or Start.
func New(c client.Client, taskQueue string, acts *activities.Activities) worker.Worker {
	// Pollers scale with the backlog (Temporal's recommendation): a
	// window move's thousands of updates ran at about twice the rate of the
	// SDK's default two pollers per kind on the development server.
	w := worker.New(c, taskQueue, worker.Options{
		WorkflowTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
		ActivityTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
	})
	RegisterWorkflow(w)
	w.RegisterActivity(acts)
	w.RegisterWorkflowWithOptions(workflows.WindowMove, workflow.RegisterOptions{Name: workflows.WindowMoveWorkflowName})
	w.RegisterActivity(&activities.WindowMoves{Registrations: acts.Registrations, Changer: workflows.WindowChanger{Client: c}})
	return w
}

// RegisterRetention adds the retention workflow under its name and its
// activity (r: the database, the file store, the periods and the metrics
// hook) to a worker: the retention schedules start it on the worker's task
// queue.
func RegisterRetention(w worker.Worker, r *activities.Retention) {
	w.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: workflows.RetentionWorkflowName})
	w.RegisterActivity(r)
}

// RegisterWorkflow adds the registration workflow under its name to a
// worker, a replayer or a test environment.
func RegisterWorkflow(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
}) {
	r.RegisterWorkflowWithOptions(workflows.Registration, workflow.RegisterOptions{Name: workflows.WorkflowName})
}
