package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
)

// TestMain lets the test binary act as the fakegce command (for TestBinarySignals).
func TestMain(m *testing.M) {
	if os.Getenv("FAKEGCE_AS_MAIN") == "1" {
		os.Args = append([]string{"fakegce"}, strings.Fields(os.Getenv("FAKEGCE_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseFlags(t *testing.T) {
	var errOut bytes.Buffer
	o, err := parseFlags([]string{"--listen", "127.0.0.1:0", "--project", "p1", "--region", "europe-west1",
		"--zones", "europe-west1-b,europe-west1-c", "--operation-latency", "0", "--health-mode", "probe",
		"--strict-endpoint-ops", "--max-endpoints-per-call", "250", "--fixed-healthy-delay", "2s", "--cluster-name", "c1",
		"--numeric-project-id", "42", "--max-endpoints-per-neg", "20"}, &errOut)
	if err != nil {
		t.Fatal(err, errOut.String())
	}
	c := o.cfg
	if c.Project != "p1" || c.Region != "europe-west1" || strings.Join(c.Zones, ",") != "europe-west1-b,europe-west1-c" ||
		c.OperationLatency != 0 || c.HealthMode != "probe" || !c.StrictEndpointOps || c.MaxEndpointsPerCall != 250 ||
		c.FixedHealthyDelay != 2*time.Second || c.ClusterName != "c1" || c.NumericProjectID != 42 || c.MaxEndpointsPerNEG != 20 {
		t.Errorf("config = %+v", c)
	}
	if o, err := parseFlags(nil, &errOut); err != nil || o.cfg.OperationLatency != 50*time.Millisecond || o.listen != "127.0.0.1:8085" {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	if o.cfg.Quota != nil {
		t.Errorf("quota on without --quota: %+v", o.cfg.Quota)
	}
	for _, tc := range []struct {
		args []string
		want map[string]int // nil = quota off
		err  bool
	}{
		{args: []string{"--quota"}, want: map[string]int{}},
		{args: []string{"--quota-limits", "default=3000,list_requests=100"}, want: map[string]int{"default": 3000, "list_requests": 100}},
		{args: []string{"--quota", "--quota-limits=read_requests=5"}, want: map[string]int{"read_requests": 5}},
		{args: []string{"--quota-limits", "reads=5"}, err: true},
		{args: []string{"--quota-limits", "default=-1"}, err: true},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		if tc.err {
			if err == nil {
				t.Errorf("%v: accepted", tc.args)
			}
			continue
		}
		if err != nil || o.cfg.Quota == nil || len(o.cfg.Quota.Limits) != len(tc.want) {
			t.Errorf("%v: %+v, %v; want limits %v", tc.args, o, err, tc.want)
			continue
		}
		for g, n := range tc.want {
			if o.cfg.Quota.Limits[g] != n {
				t.Errorf("%v: %s=%d, want %d", tc.args, g, o.cfg.Quota.Limits[g], n)
			}
		}
	}
	if o.cfg.Auth != nil {
		t.Errorf("auth on without flags: %+v", o.cfg.Auth)
	}
	for _, args := range [][]string{{"--auth"}, {"--require-auth"}, {"--auth-audience", "//iam.googleapis.com/x"},
		{"--auth-subject-token-file", "/tmp/t"}, {"--auth-service-accounts", "a@p.iam.gserviceaccount.com,b@p.iam.gserviceaccount.com"}} {
		o, err := parseFlags(args, io.Discard)
		if err != nil || o.cfg.Auth == nil {
			t.Errorf("%v: %+v, %v; want auth on", args, o, err)
		}
	}
	if o, _ := parseFlags([]string{"--require-auth", "--auth-audience=aud", "--auth-service-accounts=a@x,b@x", "--auth-subject-token-file=/f"}, io.Discard); o == nil ||
		!o.cfg.Auth.Required || o.cfg.Auth.Audience != "aud" || strings.Join(o.cfg.Auth.ServiceAccounts, ",") != "a@x,b@x" || o.cfg.Auth.SubjectTokenFile != "/f" {
		t.Errorf("auth flags: %+v", o)
	}
	if _, err := parseFlags([]string{"--health-mode", "psychic"}, &errOut); err == nil {
		t.Error("bad health mode accepted")
	}
	if o, err := parseFlags([]string{"--default-stack-type", "IPV4_IPV6"}, io.Discard); err != nil || o.cfg.DefaultStackType != "IPV4_IPV6" {
		t.Errorf("--default-stack-type IPV4_IPV6: %+v, %v", o, err)
	}
	if _, err := parseFlags([]string{"--default-stack-type", "IPV5"}, io.Discard); err == nil {
		t.Error("bad stack type accepted")
	}
	errOut.Reset()
	if _, err := parseFlags([]string{"--help"}, &errOut); err == nil || !strings.Contains(errOut.String(), "--operation-latency") {
		t.Errorf("--help: %v\n%s", err, errOut.String())
	}
}

func TestRunServesAndStops(t *testing.T) {
	o, err := parseFlags([]string{"--listen", "127.0.0.1:0", "--operation-latency", "10ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, pw); pw.Close() }()
	base, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base = strings.TrimSpace(base)
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("first line %q", base)
	}
	go io.Copy(io.Discard, pr)
	svc, err := compute.NewService(ctx, option.WithEndpoint(base+"/compute/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	op, err := svc.NetworkEndpointGroups.Insert("test-project", "us-central1-a", &compute.NetworkEndpointGroup{Name: "web"}).Do()
	if err != nil || op.Status != "RUNNING" {
		t.Fatalf("insert = %+v, %v", op, err)
	}
	if op, err = svc.ZoneOperations.Wait("test-project", "us-central1-a", op.Name).Do(); err != nil || op.Status != "DONE" {
		t.Fatalf("wait = %+v, %v", op, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// TestBinarySignals runs the command as a process and stops it with SIGTERM.
func TestBinarySignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "FAKEGCE_AS_MAIN=1", "FAKEGCE_ARGS=--listen 127.0.0.1:0 --zones us-central1-f")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			base, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				cmd.Process.Kill()
				t.Fatalf("no URL line: %v\n%s", err, stderr.String())
			}
			resp, err := http.Get(strings.TrimSpace(base) + "/compute/v1/projects/test-project/zones/us-central1-f")
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("zones.get: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			waitErr := make(chan error, 1)
			go func() { waitErr <- cmd.Wait() }()
			select {
			case err := <-waitErr:
				if err != nil {
					t.Errorf("exit: %v\n%s", err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("did not stop")
			}
			if !strings.Contains(stderr.String(), "shutting down") {
				t.Errorf("stderr: %s", stderr.String())
			}
		})
	}
}
