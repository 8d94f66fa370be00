package netconf

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSetOptions(t *testing.T) {
	r := New(Options{MTU: 1450, PollInterval: time.Minute}, nil, nil, slog.New(slog.DiscardHandler))
	exclude := []string{"net-b"}
	r.SetOptions(Options{MTU: 1400, DefaultRoute: true, DefaultRouteMetric: 5, Exclude: exclude, PinMetadataRoute: true, PollInterval: time.Second})
	exclude[0] = "changed by the caller"
	want := Options{MTU: 1400, DefaultRoute: true, DefaultRouteMetric: 5, Exclude: []string{"net-b"}, PinMetadataRoute: true, PollInterval: time.Minute}
	assert.Equal(t, want, r.opts, "new settings; the poll interval stays")
	select {
	case <-r.trigger:
	default:
		t.Fatal("SetOptions did not ask for a reconcile")
	}
}
