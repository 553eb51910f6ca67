package helmcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// RepoRoot returns the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// ChartDir returns charts/neg-controller.
func ChartDir() string { return filepath.Join(RepoRoot(), "charts", "neg-controller") }

// KubeVersion is the Kubernetes version charts are rendered for (the pinned release of hack/k8s).
const KubeVersion = "v1.36.3"

// RenderChart renders the chart for a release name and namespace with values over the chart's
// defaults, as `helm template` does: the CRDs of crds/ first, then the templates in name order.
// The manifests are returned as one YAML stream.
func RenderChart(release, namespace string, values map[string]any) ([]byte, error) {
	ch, err := loader.LoadDir(ChartDir())
	if err != nil {
		return nil, err
	}
	kv, err := common.ParseKubeVersion(KubeVersion)
	if err != nil {
		return nil, err
	}
	caps := common.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	vals, err := util.ToRenderValuesWithSchemaValidation(ch, values,
		common.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true, Revision: 1}, caps, false)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for _, crd := range ch.CRDObjects() {
		fmt.Fprintf(&buf, "---\n# Source: %s\n%s\n", crd.Filename, bytes.TrimSpace(crd.File.Data))
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasSuffix(n, ".yaml") || strings.TrimSpace(out[n]) == "" {
			continue
		}
		fmt.Fprintf(&buf, "---\n# Source: %s\n%s\n", n, strings.TrimSpace(out[n]))
	}
	return buf.Bytes(), nil
}

// RenderKustomize builds manifests/ with the named components of manifests/components/, as a
// user's overlay would, with the kustomize API.
func RenderKustomize(components ...string) ([]byte, error) {
	root := RepoRoot()
	overlay, err := os.MkdirTemp(root, ".helmcheck-overlay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(overlay)
	var k strings.Builder
	k.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../manifests]\ncomponents:\n")
	for _, c := range components {
		fmt.Fprintf(&k, "- ../manifests/components/%s\n", c)
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k.String()), 0o644); err != nil {
		return nil, err
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		return nil, err
	}
	return res.AsYaml()
}

// Decode decodes a multi-document YAML stream.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}
