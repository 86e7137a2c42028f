// Package temporalsetup prepares a Temporal namespace for zikao: it creates
// the namespace when it is missing, registers the workflow's search
// attributes in it and checks that the server accepts Workflow Updates. It
// is idempotent: run again, it finds everything in place and changes
// nothing. `zikao temporal setup` runs it against any cluster, `zikao dev`
// against its dev server.
package temporalsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultRetention keeps a closed registration's history for 30 days.
const DefaultRetention = 30 * 24 * time.Hour

// Namespaces is the part of client.NamespaceClient the setup uses.
type Namespaces interface {
	Register(ctx context.Context, request *workflowservice.RegisterNamespaceRequest) error
	Describe(ctx context.Context, name string) (*workflowservice.DescribeNamespaceResponse, error)
}

// Operator is the part of the operator service the setup uses.
type Operator interface {
	ListSearchAttributes(ctx context.Context, in *operatorservice.ListSearchAttributesRequest) (map[string]enumspb.IndexedValueType, error)
	AddSearchAttributes(ctx context.Context, in *operatorservice.AddSearchAttributesRequest) error
}

// StartProbe starts a workflow that sets the search attributes (and ends
// it at once), returning the server's error.
type StartProbe func(ctx context.Context, sa temporal.SearchAttributes) error

// UpdateProbe sends a Workflow Update to a workflow that does not exist and
// returns the server's error.
type UpdateProbe func(ctx context.Context) error

// Options say what to set up.
type Options struct {
	Namespace        string
	Retention        time.Duration // for a namespace it creates; 0 means DefaultRetention
	SearchAttributes temporal.SearchAttributes
	// Cloud is set for Temporal Cloud: namespaces and search attributes are
	// made in its console (or with tcld), so the setup only checks them.
	Cloud bool
	Out   io.Writer // what it found and did, one line each; nil discards
	// Patience bounds the retries while a new namespace propagates
	// (0 means one minute).
	Patience time.Duration
}

// Parts are the clients the setup talks through.
type Parts struct {
	Namespaces Namespaces
	Operator   Operator
	Probe      UpdateProbe
	Start      StartProbe
}

// Report is what the setup found and did.
type Report struct {
	NamespaceCreated bool
	Retention        time.Duration
	Added            []string // search attributes it registered
	Present          []string // search attributes already there
	Missing          []string // search attributes it could not register (Cloud)
	UpdatesAccepted  bool
}

// Run sets up the namespace. It fails when something zikao needs is missing
// and could not be made, saying what the operator must do.
func Run(ctx context.Context, p Parts, o Options) (Report, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.Patience == 0 {
		o.Patience = time.Minute
	}
	var r Report
	var err error
	if r.NamespaceCreated, r.Retention, err = ensureNamespace(ctx, p.Namespaces, o); err != nil {
		return r, err
	}
	if err := ensureSearchAttributes(ctx, p.Operator, o, &r); err != nil {
		return r, err
	}
	if r.NamespaceCreated || len(r.Added) > 0 {
		if err := awaitStarts(ctx, p.Start, o); err != nil {
			return r, err
		}
	}
	if err := checkUpdates(ctx, p.Probe, o); err != nil {
		return r, err
	}
	r.UpdatesAccepted = true
	return r, nil
}

// ensureNamespace creates the namespace unless it exists (or, with Cloud,
// fails when it does not).
func ensureNamespace(ctx context.Context, ns Namespaces, o Options) (created bool, retention time.Duration, err error) {
	d, err := ns.Describe(ctx, o.Namespace)
	if err == nil {
		retention = d.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()
		fmt.Fprintf(o.Out, "namespace %s: present (retention %s)\n", o.Namespace, retention)
		return false, retention, nil
	}
	var missing *serviceerror.NamespaceNotFound
	if !errors.As(err, &missing) {
		return false, 0, fmt.Errorf("describe namespace %s: %w", o.Namespace, err)
	}
	if o.Cloud {
		return false, 0, fmt.Errorf("namespace %s does not exist: with Temporal Cloud, create it in the console (or with tcld), then run this again", o.Namespace)
	}
	err = ns.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        o.Namespace,
		Description:                      "zikao registrations",
		WorkflowExecutionRetentionPeriod: durationpb.New(o.Retention),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	switch {
	case errors.As(err, &exists): // another setup was quicker
		fmt.Fprintf(o.Out, "namespace %s: present (created meanwhile)\n", o.Namespace)
		return false, o.Retention, nil
	case err != nil:
		return false, 0, fmt.Errorf("create namespace %s: %w", o.Namespace, err)
	}
	slog.Info("namespace created", "namespace", o.Namespace, "retention", o.Retention)
	fmt.Fprintf(o.Out, "namespace %s: created (retention %s)\n", o.Namespace, o.Retention)
	return true, o.Retention, nil
}

// wanted lists the search attributes by name, sorted.
func wanted(sa temporal.SearchAttributes) map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for k := range sa.GetUntypedValues() {
		out[k.GetName()] = k.GetValueType()
	}
	return out
}

func sortedNames(m map[string]enumspb.IndexedValueType) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ensureSearchAttributes registers the missing search attributes in the
// namespace, retrying while a new namespace is not yet known everywhere.
func ensureSearchAttributes(ctx context.Context, op Operator, o Options, r *Report) error {
	want := wanted(o.SearchAttributes)
	var have map[string]enumspb.IndexedValueType
	err := retry(ctx, o.Patience, func() error {
		var err error
		have, err = op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: o.Namespace})
		return err
	})
	if err != nil && o.Cloud && refused(err) {
		fmt.Fprintf(o.Out, "search attributes: this key may not list them (%v); check in the Temporal Cloud console that %s has %s (Keyword)\n",
			err, o.Namespace, strings.Join(sortedNames(want), ", "))
		return nil
	}
	if err != nil {
		return fmt.Errorf("list search attributes of %s: %w", o.Namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, name := range sortedNames(want) {
		got, ok := have[name]
		switch {
		case !ok:
			missing[name] = want[name]
		case got != want[name]:
			return fmt.Errorf("search attribute %s is %s in %s, zikao needs %s: remove it or use another namespace", name, got, o.Namespace, want[name])
		default:
			r.Present = append(r.Present, name)
			fmt.Fprintf(o.Out, "search attribute %s (%s): present\n", name, got)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if o.Cloud {
		return cloudMissing(o, missing, r)
	}
	err = retry(ctx, o.Patience, func() error {
		return op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: o.Namespace, SearchAttributes: missing})
	})
	if err != nil {
		return fmt.Errorf("register search attributes in %s: %w", o.Namespace, err)
	}
	for _, name := range sortedNames(missing) {
		r.Added = append(r.Added, name)
		fmt.Fprintf(o.Out, "search attribute %s (%s): added\n", name, missing[name])
	}
	slog.Info("search attributes registered", "namespace", o.Namespace, "names", r.Added)
	return nil
}

// cloudMissing tells the operator how to add what Temporal Cloud lacks.
func cloudMissing(o Options, missing map[string]enumspb.IndexedValueType, r *Report) error {
	r.Missing = sortedNames(missing)
	for _, name := range r.Missing {
		fmt.Fprintf(o.Out, "search attribute %s (%s): MISSING — add it in the Temporal Cloud console or with\n  tcld namespace search-attributes add --namespace %s --search-attribute \"%s=%s\"\n",
			name, missing[name], o.Namespace, name, typeName(missing[name]))
	}
	return fmt.Errorf("%d search attribute(s) missing in %s: add them in the Temporal Cloud console, then run this again", len(missing), o.Namespace)
}

// typeName is the type as tcld and the CLI spell it.
func typeName(t enumspb.IndexedValueType) string {
	s := t.String() // INDEXED_VALUE_TYPE_KEYWORD
	const prefix = "INDEXED_VALUE_TYPE_"
	if len(s) > len(prefix) {
		s = s[len(prefix):]
	}
	b := []byte(s)
	for i := 1; i < len(b); i++ {
		if b[i] >= 'A' && b[i] <= 'Z' && b[i-1] != '_' {
			b[i] += 'a' - 'A'
		}
	}
	return string(slices.DeleteFunc(b, func(c byte) bool { return c == '_' }))
}

// awaitStarts waits until workflow starts accept the search attributes:
// every frontend and history host learns a namespace's new attributes from
// its namespace cache (refreshed every few seconds), and until then a start
// that sets them is refused.
func awaitStarts(ctx context.Context, start StartProbe, o Options) error {
	began := time.Now()
	deadline := began.Add(o.Patience)
	wait := 200 * time.Millisecond
	for {
		err := start(ctx, o.SearchAttributes)
		if err == nil {
			fmt.Fprintf(o.Out, "workflow starts: accept the search attributes (after %s)\n", time.Since(began).Round(100*time.Millisecond))
			return nil
		}
		var invalid *serviceerror.InvalidArgument
		if !(errors.As(err, &invalid) || transient(err)) || time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("start a workflow with the search attributes: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// checkUpdates sends an update to a workflow that does not exist: a server
// that accepts updates answers NotFound; one that refuses them answers
// PermissionDenied or Unimplemented.
func checkUpdates(ctx context.Context, probe UpdateProbe, o Options) error {
	var err error
	retryErr := retry(ctx, o.Patience, func() error {
		err = probe(ctx)
		var nsMissing *serviceerror.NamespaceNotFound
		if errors.As(err, &nsMissing) {
			return err // the new namespace is not known to every frontend yet
		}
		return nil
	})
	if retryErr != nil {
		return fmt.Errorf("check Workflow Updates: %w", retryErr)
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		fmt.Fprintln(o.Out, "workflow updates: accepted")
		return nil
	}
	fmt.Fprintln(o.Out, "workflow updates: REFUSED")
	if err == nil {
		return errors.New("check Workflow Updates: an update to a workflow that does not exist was accepted")
	}
	return fmt.Errorf("the server does not accept Workflow Updates (zikao's decisions are updates): %w; on a self-hosted cluster set the dynamic config frontend.enableUpdateWorkflowExecution to true", err)
}

// retry calls fn until it succeeds, fails for good, or patience runs out,
// waiting 200 ms at first and twice as long each time, at most 5 s.
func retry(ctx context.Context, patience time.Duration, fn func() error) error {
	deadline := time.Now().Add(patience)
	wait := 200 * time.Millisecond
	for {
		err := fn()
		if err == nil || !transient(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		slog.Debug("temporal setup: retrying", "error", err, "wait", wait)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// refused errors are those of a caller that may not do what it asked.
func refused(err error) bool {
	var (
		denied *serviceerror.PermissionDenied
		unimpl *serviceerror.Unimplemented
	)
	return errors.As(err, &denied) || errors.As(err, &unimpl)
}

// transient errors are those of a namespace that is still propagating or a
// server that is briefly away.
func transient(err error) bool {
	var (
		nsMissing   *serviceerror.NamespaceNotFound
		notFound    *serviceerror.NotFound
		unavailable *serviceerror.Unavailable
		notReady    *serviceerror.NamespaceInvalidState
	)
	return errors.As(err, &nsMissing) || errors.As(err, &notFound) || errors.As(err, &unavailable) || errors.As(err, &notReady)
}

// ForClient gives the setup's parts over an SDK client dialled to the
// namespace (client.Dial does not need the namespace to exist) and a
// namespace client with the same connection settings.
func ForClient(c client.Client, namespaces client.NamespaceClient) Parts {
	return Parts{
		Namespaces: namespaces,
		Operator:   operator{c.OperatorService()},
		Probe: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID:   "zikao-setup-probe-no-such-workflow",
				UpdateName:   "zikao-setup-probe",
				WaitForStage: client.WorkflowUpdateStageAccepted,
			})
			return err
		},
		Start: func(ctx context.Context, sa temporal.SearchAttributes) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			id := "zikao-setup-probe-" + uuid.NewString()
			_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: id, TaskQueue: "zikao-setup-probe", WorkflowExecutionTimeout: time.Minute,
				TypedSearchAttributes: sa,
			}, "zikao-setup-probe")
			if err != nil {
				return err
			}
			if err := c.TerminateWorkflow(ctx, id, "", "zikao temporal setup: probe"); err != nil {
				slog.Warn("terminate the setup's probe workflow (it times out in a minute)", "workflow_id", id, "error", err)
			}
			return nil
		},
	}
}

// operator adapts the operator service's gRPC client.
type operator struct {
	svc operatorservice.OperatorServiceClient
}

func (o operator) ListSearchAttributes(ctx context.Context, in *operatorservice.ListSearchAttributesRequest) (map[string]enumspb.IndexedValueType, error) {
	resp, err := o.svc.ListSearchAttributes(ctx, in)
	if err != nil {
		return nil, err
	}
	return resp.GetCustomAttributes(), nil
}

func (o operator) AddSearchAttributes(ctx context.Context, in *operatorservice.AddSearchAttributesRequest) error {
	_, err := o.svc.AddSearchAttributes(ctx, in)
	return err
}

// Dial connects with the given client options (those of the other commands)
// and runs the setup.
func Dial(ctx context.Context, opts client.Options, o Options) (Report, error) {
	opts.Namespace = o.Namespace
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return Report{}, fmt.Errorf("connect to Temporal at %s: %w", opts.HostPort, err)
	}
	defer c.Close()
	nc, err := client.NewNamespaceClient(opts)
	if err != nil {
		return Report{}, fmt.Errorf("namespace client: %w", err)
	}
	defer nc.Close()
	return Run(ctx, ForClient(c, nc), o)
}
