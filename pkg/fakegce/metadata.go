package fakegce

import (
	"fmt"
	"net/http"
	"strings"
)

// fakeToken is the access token the metadata server hands out.
const fakeToken = "fake-token"

// serveMetadata emulates the GCE metadata server for cloud.google.com/go/compute/metadata
// (point GCE_METADATA_HOST at the listener's host:port) and for Application Default
// Credentials, which take their token from instance/service-accounts/default/token. Like the
// real server it requires "Metadata-Flavor: Google" (403 without) and answers 404 for keys it
// does not have (the metadata client retries 5xx, so 404 is what makes it give up at once).
// The emulated VM lives in the first configured zone.
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	rec := s.obs.begin("metadata", r, "")
	status := http.StatusOK
	defer func() { s.obs.finish(rec, status) }()
	w.Header().Set("Metadata-Flavor", "Google")
	w.Header().Set("Server", "Metadata Server for VM")
	if r.Header.Get("Metadata-Flavor") != "Google" {
		status = http.StatusForbidden
		http.Error(w, "Missing required header: Metadata-Flavor", status)
		return
	}
	if r.Method != http.MethodGet {
		status = http.StatusMethodNotAllowed
		http.Error(w, "Method not allowed", status)
		return
	}
	key := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/computeMetadata/v1/"), "/")
	if key == "instance/service-accounts/default/token" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":3600,"token_type":"Bearer"}`, fakeToken)
		return
	}
	v, ok := s.metadataValue(key)
	if !ok {
		status = http.StatusNotFound
		http.Error(w, "fakegce: no metadata key "+key, status)
		return
	}
	w.Header().Set("Content-Type", "application/text")
	_, _ = w.Write([]byte(v))
}

func (s *Server) metadataValue(key string) (string, bool) {
	num := fmt.Sprint(s.cfg.NumericProjectID)
	email := "default@" + s.cfg.Project + ".iam.gserviceaccount.com"
	v, ok := map[string]string{
		"project/project-id":                       s.cfg.Project,
		"project/numeric-project-id":               num,
		"instance/zone":                            "projects/" + num + "/zones/" + s.cfg.Zones[0],
		"instance/name":                            "fakegce-vm",
		"instance/id":                              "1234567890123456789",
		"instance/hostname":                        "fakegce-vm." + s.cfg.Zones[0] + ".c." + s.cfg.Project + ".internal",
		"instance/tags":                            "[]",
		"instance/attributes":                      "cluster-location\ncluster-name\n",
		"instance/attributes/cluster-name":         s.cfg.ClusterName,
		"instance/attributes/cluster-location":     s.cfg.ClusterLocation,
		"instance/network-interfaces/0/network":    "projects/" + num + "/networks/default",
		"instance/service-accounts":                "default/\n" + email + "/\n",
		"instance/service-accounts/default/email":  email,
		"instance/service-accounts/default/scopes": "https://www.googleapis.com/auth/cloud-platform",
	}[key]
	return v, ok
}
