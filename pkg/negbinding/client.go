package negbinding

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// Client reads and writes NetworkEndpointGroupBindings through the dynamic client, converting to
// and from the typed objects of this package (no generated clientset). Errors are the API
// server's (classify them with k8s.io/apimachinery/pkg/api/errors).
type Client struct {
	dyn  dynamic.Interface
	disc discovery.DiscoveryInterface
}

// NewClient returns a Client; disc is asked whether the CRD is installed.
func NewClient(dyn dynamic.Interface, disc discovery.DiscoveryInterface) *Client {
	return &Client{dyn: dyn, disc: disc}
}

// Installed reports whether the API server serves the CRD's v1beta1 version. A missing
// group/version is not an error.
func (c *Client) Installed() (bool, error) {
	list, err := c.disc.ServerResourcesForGroupVersion(GroupVersion.String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discovering %s: %w", GroupVersion, err)
	}
	for _, r := range list.APIResources {
		if r.Name == Resource {
			return true, nil
		}
	}
	return false, nil
}

func (c *Client) resource(namespace string) dynamic.ResourceInterface {
	return c.dyn.Resource(GroupVersionResource).Namespace(namespace)
}

// Get reads one binding.
func (c *Client) Get(ctx context.Context, namespace, name string) (*NetworkEndpointGroupBinding, error) {
	u, err := c.resource(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return FromUnstructured(u)
}

// Create creates b (tests; the controller creates none).
func (c *Client) Create(ctx context.Context, b *NetworkEndpointGroupBinding) (*NetworkEndpointGroupBinding, error) {
	return c.write(b, func(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return c.resource(b.Namespace).Create(ctx, u, metav1.CreateOptions{})
	})
}

// Update replaces b's metadata and spec (optimistic concurrency on its resourceVersion); the
// status subresource makes the server ignore its status. The controller uses it for the
// finalizer only.
func (c *Client) Update(ctx context.Context, b *NetworkEndpointGroupBinding) (*NetworkEndpointGroupBinding, error) {
	return c.write(b, func(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return c.resource(b.Namespace).Update(ctx, u, metav1.UpdateOptions{})
	})
}

// UpdateStatus replaces b's status (optimistic concurrency on its resourceVersion).
func (c *Client) UpdateStatus(ctx context.Context, b *NetworkEndpointGroupBinding) (*NetworkEndpointGroupBinding, error) {
	return c.write(b, func(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return c.resource(b.Namespace).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	})
}

// Delete deletes a binding (tests). A missing one is success.
func (c *Client) Delete(ctx context.Context, namespace, name string) error {
	err := c.resource(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (c *Client) write(b *NetworkEndpointGroupBinding, call func(*unstructured.Unstructured) (*unstructured.Unstructured, error)) (*NetworkEndpointGroupBinding, error) {
	u, err := ToUnstructured(b)
	if err != nil {
		return nil, err
	}
	got, err := call(u)
	if err != nil {
		return nil, err
	}
	return FromUnstructured(got)
}

// ToUnstructured converts b (setting apiVersion and kind).
func ToUnstructured(b *NetworkEndpointGroupBinding) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err != nil {
		return nil, fmt.Errorf("converting %s %s/%s: %w", Kind, b.Namespace, b.Name, err)
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
func FromUnstructured(u *unstructured.Unstructured) (*NetworkEndpointGroupBinding, error) {
	var out NetworkEndpointGroupBinding
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out); err != nil {
		return nil, fmt.Errorf("converting %s %s/%s: %w", Kind, u.GetNamespace(), u.GetName(), err)
	}
	return &out, nil
}
