// Package e2e holds end-to-end tests of hc-agent on the simulated cloud
// (package simcloud): the real daemon runs in each server's network
// namespace against the metadata service and the API simulator, and every
// assertion is about what a client sees (which server answers on the
// floating IP) or about kernel state inside the server namespaces.
//
// The tests need root and skip with a message otherwise. TestMain builds
// hc-agent once per test binary.
package e2e
