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
	RegisterWorkflow(w)
	w.RegisterActivity(acts)
	return w
}

// RegisterWorkflow adds the registration workflow under its name to a
// worker, a replayer or a test environment.
func RegisterWorkflow(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
}) {
	r.RegisterWorkflowWithOptions(workflows.Registration, workflow.RegisterOptions{Name: workflows.WorkflowName})
}
