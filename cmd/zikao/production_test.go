package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The production build (-tags production) links none of the test rig: not
// the Temporal SDK's test suite (the dev server harness), not the
// fault-injection run, not the development stack nor the tests' helpers.
// (testify stays: the SDK's own internal package imports it.)
func TestProductionBuildHoldsNoTestRig(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "production", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "go.temporal.io/sdk/testsuite", "zikao/internal/chaos", "zikao/internal/devstack", "zikao/internal/testenv", "zikao/internal/prodtest":
			t.Errorf("the production build links %s", pkg)
		}
	}
	if !strings.Contains(string(out), "zikao/api\n") || !strings.Contains(string(out), "zikao/worker\n") {
		t.Errorf("the production build lacks the API or the worker:\n%s", out)
	}
}
