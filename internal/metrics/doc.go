// Package metrics holds the Prometheus metrics shared by the API and the
// worker: the backlog gauges computed from the read model at scrape time,
// and the Temporal SDK's metrics handler. No label holds personal data:
// statuses, stages, exam area codes and the SDK's own tags only.
package metrics
