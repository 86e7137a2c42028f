// Package worker runs the registration workflow and its activities on a
// Temporal task queue.
package worker

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"zikao/activities"
	"zikao/workflows"
)

// New returns a worker for taskQueue with the registration workflow and
// acts registered; start it with Run or Start.
func New(c client.Client, taskQueue string, acts *activities.Activities) worker.Worker {
	w := worker.New(c, taskQueue, worker.Options{})
	Register(w, acts)
	return w
}

// Register adds the workflow and its activities to a worker (or to a
// replayer or test environment, which take the same calls).
func Register(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
	RegisterActivity(any)
}, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.Registration, workflow.RegisterOptions{Name: workflows.WorkflowName})
	r.RegisterActivity(acts)
}
