// Package packaging holds the nfpm configuration, maintainer scripts and
// example alerting rules of the hc-agent .deb and .rpm, and their tests.
package packaging
