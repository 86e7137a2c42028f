package temporalsetup

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fake is a server with one namespace table and one search-attribute table;
// a new namespace is "not found" by the operator service for a few calls,
// as on a real cluster while it propagates.
type fake struct {
	retention  map[string]time.Duration
	attrs      map[string]map[string]enumspb.IndexedValueType
	lagging    int // operator calls that still fail after a namespace is made
	registered int
	added      int
	probeErr   error
	// workflow starts refused after attributes are added, while caches refresh
	startsRefused int
}

func newFake() *fake {
	return &fake{retention: map[string]time.Duration{}, attrs: map[string]map[string]enumspb.IndexedValueType{},
		probeErr: serviceerror.NewNotFound("workflow not found")}
}

func (f *fake) Describe(_ context.Context, name string) (*workflowservice.DescribeNamespaceResponse, error) {
	r, ok := f.retention[name]
	if !ok {
		return nil, serviceerror.NewNamespaceNotFound(name)
	}
	return &workflowservice.DescribeNamespaceResponse{NamespaceInfo: &namespacepb.NamespaceInfo{Name: name},
		Config: &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(r)}}, nil
}

func (f *fake) Register(_ context.Context, in *workflowservice.RegisterNamespaceRequest) error {
	if _, ok := f.retention[in.Namespace]; ok {
		return serviceerror.NewNamespaceAlreadyExists("exists")
	}
	f.registered++
	f.retention[in.Namespace] = in.WorkflowExecutionRetentionPeriod.AsDuration()
	f.attrs[in.Namespace] = map[string]enumspb.IndexedValueType{}
	f.lagging = 2
	return nil
}

func (f *fake) lag(ns string) error {
	if f.lagging > 0 {
		f.lagging--
		return serviceerror.NewUnavailable("Namespace " + ns + " is not found")
	}
	return nil
}

func (f *fake) ListSearchAttributes(_ context.Context, in *operatorservice.ListSearchAttributesRequest) (map[string]enumspb.IndexedValueType, error) {
	if err := f.lag(in.Namespace); err != nil {
		return nil, err
	}
	return f.attrs[in.Namespace], nil
}

func (f *fake) AddSearchAttributes(_ context.Context, in *operatorservice.AddSearchAttributesRequest) error {
	if err := f.lag(in.Namespace); err != nil {
		return err
	}
	for k, v := range in.SearchAttributes {
		f.attrs[in.Namespace][k] = v
		f.added++
	}
	return nil
}

func (f *fake) parts() Parts {
	return Parts{Namespaces: f, Operator: f, Probe: func(context.Context) error { return f.probeErr },
		Start: func(context.Context, temporal.SearchAttributes) error {
			if f.startsRefused > 0 {
				f.startsRefused--
				return serviceerror.NewInvalidArgument("Namespace zk has no mapping defined for search attribute ExamArea")
			}
			return nil
		}}
}

var attrs = temporal.NewSearchAttributes(
	temporal.NewSearchAttributeKeyKeyword("RegistrationStatus").ValueSet(""),
	temporal.NewSearchAttributeKeyKeyword("ExamArea").ValueSet(""))

func TestRunCreatesThenFindsEverything(t *testing.T) {
	f := newFake()
	f.startsRefused = 2
	var out strings.Builder
	r, err := Run(context.Background(), f.parts(), Options{Namespace: "zk", SearchAttributes: attrs, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if !r.NamespaceCreated || r.Retention != DefaultRetention || len(r.Added) != 2 || !r.UpdatesAccepted {
		t.Fatalf("first run: %+v", r)
	}
	if f.startsRefused != 0 || !strings.Contains(out.String(), "workflow starts: accept") {
		t.Errorf("did not wait for starts to accept the attributes:\n%s", out.String())
	}
	if f.retention["zk"] != 720*time.Hour {
		t.Errorf("retention %s, want 720h", f.retention["zk"])
	}
	t.Log(out.String())

	out.Reset()
	r, err = Run(context.Background(), f.parts(), Options{Namespace: "zk", SearchAttributes: attrs, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if r.NamespaceCreated || len(r.Added) != 0 || len(r.Present) != 2 || f.registered != 1 || f.added != 2 {
		t.Fatalf("second run changed something: %+v, registered %d, added %d", r, f.registered, f.added)
	}
	if !strings.Contains(out.String(), "namespace zk: present (retention 720h0m0s)") {
		t.Errorf("second run said:\n%s", out.String())
	}
}

func TestRunWithCloudOnlyChecks(t *testing.T) {
	f := newFake()
	_, err := Run(context.Background(), f.parts(), Options{Namespace: "zk", SearchAttributes: attrs, Cloud: true})
	if err == nil || !strings.Contains(err.Error(), "console") || f.registered != 0 {
		t.Fatalf("missing Cloud namespace: %v (registered %d)", err, f.registered)
	}
	f.retention["zk"] = 24 * time.Hour
	f.attrs["zk"] = map[string]enumspb.IndexedValueType{"ExamArea": enumspb.INDEXED_VALUE_TYPE_KEYWORD}
	var out strings.Builder
	r, err := Run(context.Background(), f.parts(), Options{Namespace: "zk", SearchAttributes: attrs, Cloud: true, Out: &out})
	if err == nil || f.added != 0 || len(r.Missing) != 1 || r.Missing[0] != "RegistrationStatus" {
		t.Fatalf("Cloud with a missing attribute: %v, %+v, added %d", err, r, f.added)
	}
	if !strings.Contains(out.String(), `--search-attribute "RegistrationStatus=Keyword"`) {
		t.Errorf("no instruction for the operator:\n%s", out.String())
	}
}

func TestRunRefusesAWrongTypeAndUpdatesDisabled(t *testing.T) {
	f := newFake()
	f.retention["zk"] = time.Hour
	f.attrs["zk"] = map[string]enumspb.IndexedValueType{"ExamArea": enumspb.INDEXED_VALUE_TYPE_TEXT}
	if _, err := Run(context.Background(), f.parts(), Options{Namespace: "zk", SearchAttributes: attrs}); err == nil || !strings.Contains(err.Error(), "ExamArea") {
		t.Fatalf("wrong type: %v", err)
	}
	f.attrs["zk"] = map[string]enumspb.IndexedValueType{}
	f.probeErr = serviceerror.NewPermissionDenied("UpdateWorkflowExecution operation is disabled on this namespace", "")
	r, err := Run(context.Background(), f.parts(), Options{Namespace: "zk", SearchAttributes: attrs})
	if err == nil || r.UpdatesAccepted || !strings.Contains(err.Error(), "enableUpdateWorkflowExecution") {
		t.Fatalf("updates disabled: %v, %+v", err, r)
	}
}

// refusing is a Cloud namespace whose key may not list search attributes.
type refusing struct{ *fake }

func (refusing) ListSearchAttributes(context.Context, *operatorservice.ListSearchAttributesRequest) (map[string]enumspb.IndexedValueType, error) {
	return nil, serviceerror.NewPermissionDenied("not allowed", "")
}

func TestRunWithCloudThatMayNotList(t *testing.T) {
	f := newFake()
	f.retention["zk"] = 24 * time.Hour
	p := f.parts()
	p.Operator = refusing{f}
	var out strings.Builder
	r, err := Run(context.Background(), p, Options{Namespace: "zk", SearchAttributes: attrs, Cloud: true, Out: &out})
	if err != nil || !r.UpdatesAccepted || !strings.Contains(out.String(), "check in the Temporal Cloud console") {
		t.Fatalf("%v, %+v:\n%s", err, r, out.String())
	}
}
