package app

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/neg-controller/neg-controller/pkg/negsync"
)

// DualStackOptions are the address families of NEG endpoints: --enable-dual-stack-neg,
// --enable-ipv6-only-neg, --dual-stack-migration-pause.
type DualStackOptions struct {
	// Enable gives dual-stack Services endpoints with both addresses.
	Enable bool
	// IPv6Only gives IPv6-only Services IPv6 endpoints.
	IPv6Only bool
	// MigrationPause is the pause between the steps of a single ↔ dual-stack migration.
	MigrationPause time.Duration
}

// DefaultDualStack returns the default DualStackOptions.
func DefaultDualStack() DualStackOptions {
	return DualStackOptions{Enable: true, MigrationPause: negsync.DefaultMigrationPause}
}

func (o *Options) addDualStackFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.DualStack.Enable, "enable-dual-stack-neg", o.DualStack.Enable,
		"Give Services with ipFamilies IPv4 and IPv6 dual-stack NEG endpoints: each pod's IPv4 and IPv6 address "+
			"(ipAddress + ipv6Address), paired from the IPv4 and IPv6 EndpointSlices. The NEG's subnetwork must be "+
			"dual-stack. Switching a Service between single- and dual-stack migrates its endpoints in steps (see "+
			"--dual-stack-migration-pause). Off: IPv4 endpoints only (GKE's default). Hybrid NEGs are always IPv4.")
	fs.BoolVar(&o.DualStack.IPv6Only, "enable-ipv6-only-neg", o.DualStack.IPv6Only,
		"Give IPv6-only Services (ipFamilies [IPv6]) NEG endpoints with an IPv6 address only. Off (GKE's default): "+
			"their NEGs stay empty, with a NoIPv4Endpoints Warning event.")
	fs.DurationVar(&o.DualStack.MigrationPause, "dual-stack-migration-pause", o.DualStack.MigrationPause,
		"When a Service switches between single- and dual-stack, each NEG replaces its endpoints in steps of 10% "+
			"(at least one): detach the old endpoints, attach the new ones, then wait this long (for health checks "+
			"to pass the new endpoints) before the next step.")
}

func (o *Options) validateDualStack() []error {
	if o.DualStack.MigrationPause < 0 {
		return []error{fmt.Errorf("--dual-stack-migration-pause must not be negative, got %s", o.DualStack.MigrationPause)}
	}
	return nil
}

// migrationPause is the pause for negsync: its zero value means the default, so "no pause"
// (0 on the command line) becomes negative.
func (o DualStackOptions) migrationPause() time.Duration {
	if o.MigrationPause == 0 {
		return -1
	}
	return o.MigrationPause
}
