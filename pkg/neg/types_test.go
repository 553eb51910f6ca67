package neg

import "testing"

func TestEndpointString(t *testing.T) {
	for _, tc := range []struct {
		e    Endpoint
		want string
	}{
		{Endpoint{Instance: "node-1", IP: "10.4.1.7", Port: 8080}, "node-1/10.4.1.7:8080"},
		{Endpoint{IP: "10.4.1.7", Port: 8080}, "10.4.1.7:8080"}, // hybrid: no instance
		{Endpoint{Instance: "node-1", IP: "10.4.1.7", IPv6: "fd00:4:1::7", Port: 8080}, "node-1/10.4.1.7:8080/fd00:4:1::7"},
		{Endpoint{Instance: "node-1", IPv6: "fd00:4:1::7", Port: 8080}, "node-1/[fd00:4:1::7]:8080"},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestCompareOrdersIPv6Last(t *testing.T) {
	v4 := Endpoint{Instance: "n", IP: "10.0.0.1", Port: 80}
	dual := Endpoint{Instance: "n", IP: "10.0.0.1", IPv6: "fd00::1", Port: 80}
	v6 := Endpoint{Instance: "n", IPv6: "fd00::1", Port: 80}
	got := []Endpoint{dual, v4, v6}
	SortEndpoints(got)
	if want := []Endpoint{v6, v4, dual}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("sorted = %v, want %v", got, want)
	}
	if !v4.SingleStack() || !v6.SingleStack() || dual.SingleStack() {
		t.Error("SingleStack: want v4 and v6 single-stack, dual not")
	}
}
