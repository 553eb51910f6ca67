package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/test/localcluster"
	"github.com/neg-controller/neg-controller/test/podsim"
)

type options struct {
	dir, binDir, zones, project string
	nodesPerZone                int
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "up" {
		fmt.Fprintln(os.Stderr, "usage: cluster up [--dir DIR] [--bin-dir DIR] [--zones Z1,Z2] [--nodes-per-zone N] [--project P] [klog flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	var o options
	fs.StringVar(&o.dir, "dir", ".run", "directory for kubeconfigs, PKI and logs")
	fs.StringVar(&o.binDir, "bin-dir", "", "directory with etcd, kube-apiserver, kube-controller-manager (default: hack/k8s/build.sh)")
	fs.StringVar(&o.zones, "zones", "", "comma-separated zones; if set, run the pod simulator with nodes there")
	fs.IntVar(&o.nodesPerZone, "nodes-per-zone", 1, "pod simulator nodes per zone")
	fs.StringVar(&o.project, "project", "test-project", "GCE project in the nodes' providerIDs")
	klog.InitFlags(fs)
	_ = fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		klog.Background().Error(err, "cluster up failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	c, err := localcluster.Start(ctx, localcluster.Options{
		BinDir: o.binDir, WorkDir: filepath.Join(dir, "cluster"), LogDir: filepath.Join(dir, "logs"),
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Stop(); err != nil {
			klog.Background().Error(err, "Stopping the control plane")
		}
	}()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	for src, dst := range map[string]string{c.Kubeconfig: kubeconfig, c.ControllerKubeconfig: filepath.Join(dir, "neg-controller.kubeconfig")} {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("export KUBECONFIG=%s\n", kubeconfig)

	errc := make(chan error, 1)
	if o.zones != "" {
		client, err := kubernetes.NewForConfig(c.RESTConfig)
		if err != nil {
			return err
		}
		cfg := podsim.Config{Project: o.project, Nodes: podsim.DefaultNodes(strings.Split(o.zones, ","), o.nodesPerZone)}
		go func() { errc <- podsim.Run(ctx, client, cfg) }()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			klog.Background().Info("Shutting down")
			return nil
		case err := <-errc:
			return errors.Join(errors.New("pod simulator stopped"), err)
		case <-tick.C:
			if err := c.Exited(); err != nil {
				return err
			}
		}
	}
}
