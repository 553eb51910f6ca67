package svcneg

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// Client reads and writes ServiceNetworkEndpointGroups through the dynamic client, converting
// to and from the typed objects of this package (no generated clientset needed). Errors are the
// API server's (use k8s.io/apimachinery/pkg/api/errors to classify them).
type Client struct {
	dyn  dynamic.Interface
	disc discovery.DiscoveryInterface
}

// NewClient returns a Client. disc is asked whether the CRD is installed.
func NewClient(dyn dynamic.Interface, disc discovery.DiscoveryInterface) *Client {
	return &Client{dyn: dyn, disc: disc}
}

// Support is what the API server serves of the ServiceNetworkEndpointGroup API.
type Support struct {
	// Installed: the CRD is installed and its v1beta1 version served.
	Installed bool
	// StatusSubresource: status is written through /status (copies of older versions of our
	// CRD). GKE's CRD, which we now ship too, has no status subresource: status is then
	// written with the rest of the object, as GKE's controller writes it.
	StatusSubresource bool
}

// Discover asks the API server's discovery whether the CRD is installed, and whether it has a
// status subresource. A missing group/version is not an error: it yields Support{}.
func (c *Client) Discover(ctx context.Context) (Support, error) {
	_ = ctx // discovery calls take no context
	list, err := c.disc.ServerResourcesForGroupVersion(GroupVersion.String())
	if apierrors.IsNotFound(err) {
		return Support{}, nil
	}
	if err != nil {
		return Support{}, fmt.Errorf("discovering %s: %w", GroupVersion, err)
	}
	var s Support
	for _, r := range list.APIResources {
		switch r.Name {
		case Resource:
			s.Installed = true
		case Resource + "/status":
			s.StatusSubresource = true
		}
	}
	return s, nil
}

func (c *Client) resource(namespace string) dynamic.ResourceInterface {
	return c.dyn.Resource(GroupVersionResource).Namespace(namespace)
}

// List returns the objects of every namespace that match the label selector.
func (c *Client) List(ctx context.Context, selector string) ([]*ServiceNetworkEndpointGroup, error) {
	var out []*ServiceNetworkEndpointGroup
	opts := metav1.ListOptions{LabelSelector: selector, Limit: 500}
	for {
		list, err := c.dyn.Resource(GroupVersionResource).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			o, err := FromUnstructured(&list.Items[i])
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
		if list.GetContinue() == "" {
			return out, nil
		}
		opts.Continue = list.GetContinue()
	}
}

// Get reads one object.
func (c *Client) Get(ctx context.Context, namespace, name string) (*ServiceNetworkEndpointGroup, error) {
	u, err := c.resource(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return FromUnstructured(u)
}

// Create creates obj. With a status subresource the server ignores obj's status; write it
// with UpdateStatus.
func (c *Client) Create(ctx context.Context, obj *ServiceNetworkEndpointGroup) (*ServiceNetworkEndpointGroup, error) {
	return c.write(obj, func(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return c.resource(obj.Namespace).Create(ctx, u, metav1.CreateOptions{})
	})
}

// Update replaces obj (optimistic concurrency on its resourceVersion). With a status
// subresource the server ignores obj's status.
func (c *Client) Update(ctx context.Context, obj *ServiceNetworkEndpointGroup) (*ServiceNetworkEndpointGroup, error) {
	return c.write(obj, func(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return c.resource(obj.Namespace).Update(ctx, u, metav1.UpdateOptions{})
	})
}

// UpdateStatus replaces obj's status through the status subresource (optimistic concurrency on
// its resourceVersion).
func (c *Client) UpdateStatus(ctx context.Context, obj *ServiceNetworkEndpointGroup) (*ServiceNetworkEndpointGroup, error) {
	return c.write(obj, func(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return c.resource(obj.Namespace).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	})
}

// Delete deletes the object if it still has uid (empty: any). A missing object is success.
func (c *Client) Delete(ctx context.Context, namespace, name string, uid types.UID) error {
	opts := metav1.DeleteOptions{}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err := c.resource(namespace).Delete(ctx, name, opts)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (c *Client) write(obj *ServiceNetworkEndpointGroup, call func(*unstructured.Unstructured) (*unstructured.Unstructured, error)) (*ServiceNetworkEndpointGroup, error) {
	u, err := ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	got, err := call(u)
	if err != nil {
		return nil, err
	}
	return FromUnstructured(got)
}

// ToUnstructured converts obj (setting apiVersion and kind).
func ToUnstructured(obj *ServiceNetworkEndpointGroup) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s %s/%s: %w", Kind, obj.Namespace, obj.Name, err)
	}
	// A zero metav1.Time converts to null, which the schema does not allow: leave it out.
	if st, ok := m["status"].(map[string]any); ok && st["lastSyncTime"] == nil {
		delete(st, "lastSyncTime")
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(GroupVersion.String())
	u.SetKind(Kind)
	return u, nil
}

// FromUnstructured converts u.
func FromUnstructured(u *unstructured.Unstructured) (*ServiceNetworkEndpointGroup, error) {
	var out ServiceNetworkEndpointGroup
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out); err != nil {
		return nil, fmt.Errorf("converting %s %s/%s: %w", Kind, u.GetNamespace(), u.GetName(), err)
	}
	return &out, nil
}
