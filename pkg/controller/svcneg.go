package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/svcneg"
)

// Warning event reasons of the ServiceNetworkEndpointGroup writer, recorded on the Service.
const (
	// ReasonSvcNEGConflict: an object with the NEG's name exists and belongs to another Service
	// or was not created by neg-controller (GKE's, say); it is left alone.
	ReasonSvcNEGConflict = "SvcNEGConflict"
	// ReasonSvcNEGUpdateFailed: a ServiceNetworkEndpointGroup could not be written or deleted.
	ReasonSvcNEGUpdateFailed = "SvcNEGUpdateFailed"
)

const slotSvcNEG = "svcneg"

// SvcNEGWriter writes the ServiceNetworkEndpointGroups (svcneg.Writer).
type SvcNEGWriter interface {
	// Ready reports whether objects can be written; catchUp asks for every NEG Service to be
	// synced again (objects were skipped while they could not be written).
	Ready(ctx context.Context) (ready, catchUp bool, err error)
	// Write creates or updates the object of one Service port's NEG name.
	Write(ctx context.Context, owner svcneg.Owner, name string, obs svcneg.Observed, slowRetry time.Duration) (svcneg.Result, error)
	// Delete deletes the Service's object of a NEG name (only if ours).
	Delete(ctx context.Context, svc cache.ObjectName, name string) error
	// NamesOf returns the NEG names of the Service's objects of ours.
	NamesOf(svc cache.ObjectName) []string
}

// syncSvcNEGs is the last step of a sync: write the object of every wanted NEG name of the
// Service when its content changed, and delete the objects of NEG names no longer wanted once
// their NEGs are gone (or kept because a backend service still uses them). tasks and desired
// are the sync's; both are nil when the Service wants and owns no NEG.
func (c *Controller) syncSvcNEGs(ctx context.Context, s *serviceSync, tasks []*negTask, desired map[int32]map[string]neg.EndpointSet) error {
	c.forgetNEGFailures(s.key, tasks)
	w := c.cfg.SvcNEG
	if w == nil {
		return nil
	}
	ready, catchUp, err := w.Ready(ctx)
	if catchUp {
		c.enqueueNEGServices()
	}
	if !ready || err != nil {
		return err
	}
	now := c.clock.Now()
	var errs []error
	keep := map[string]bool{}
	if s.svc != nil {
		for _, port := range slices.Sorted(maps.Keys(s.want)) {
			p := s.want[port]
			keep[p.Name] = true
			obs := c.observeSvcNEG(s, tasks, desired, p)
			owner := svcneg.Owner{Namespace: s.key.Namespace, Name: s.key.Name, UID: s.svc.UID, Port: p.Port}
			res, err := w.Write(ctx, owner, p.Name, obs, c.cfg.Backoff.Max)
			if err != nil {
				errs = append(errs, err)
			}
			slot := ReasonSvcNEGConflict + ":" + p.Name
			if res.Conflict != "" {
				c.warn(s.key, s.target, slot, ReasonSvcNEGConflict, res.Conflict)
			} else if err == nil {
				c.warnings.Clear(s.key, slot)
			}
			if res.RetryAfter > 0 {
				s.requeueBy(now.Add(res.RetryAfter))
			}
		}
	}
	for _, name := range w.NamesOf(s.key) {
		if keep[name] || c.negsRemain(tasks, name) {
			continue
		}
		if err := w.Delete(ctx, s.key, name); err != nil {
			errs = append(errs, err)
		}
	}
	err = errors.Join(errs...)
	if err != nil {
		c.warn(s.key, s.target, slotSvcNEG, ReasonSvcNEGUpdateFailed,
			fmt.Sprintf("Failed to update ServiceNetworkEndpointGroups: %v", err))
		return err
	}
	c.warnings.Clear(s.key, slotSvcNEG)
	return nil
}

// enqueueNEGServices enqueues every Service with a NEG annotation.
func (c *Controller) enqueueNEGServices() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if hasNEGAnnotation(svc) {
			c.queue.Add(cache.MetaObjectToName(svc))
		}
	}
}
