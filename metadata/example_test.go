package metadata_test

import (
	"context"
	"fmt"

	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
)

// Example reads a fake metadata service in memory, the way tests of other
// packages do. On a server, metadata.New() alone reads the real service.
func Example() {
	srv := metadatatest.NewUnstarted()
	defer srv.Close()
	srv.SetSummary(metadata.Summary{Hostname: "my-server", InstanceID: 42, Region: "eu-central"})

	c := metadata.New(
		metadata.WithEndpoint(metadatatest.InMemoryURL),
		metadata.WithHTTPClient(srv.Client()),
	)
	ctx := context.Background()
	id, err := c.InstanceID(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("instance-id:", id)

	// A server attached to no network: an empty list, not an error.
	pns, err := c.PrivateNetworks(ctx)
	fmt.Println("networks:", len(pns), err)

	srv.Delete(metadata.KeyRegion)
	_, err = c.Region(ctx)
	fmt.Println("region not found:", metadata.IsNotFound(err))
	// Output:
	// instance-id: 42
	// networks: 0 <nil>
	// region not found: true
}
