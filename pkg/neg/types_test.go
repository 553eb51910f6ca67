package neg

import "testing"

func TestEndpointString(t *testing.T) {
	for _, tc := range []struct {
		e    Endpoint
		want string
	}{
		{Endpoint{Instance: "node-1", IP: "10.4.1.7", Port: 8080}, "node-1/10.4.1.7:8080"},
		{Endpoint{IP: "10.4.1.7", Port: 8080}, "10.4.1.7:8080"}, // hybrid: no instance
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.e, got, tc.want)
		}
	}
}
