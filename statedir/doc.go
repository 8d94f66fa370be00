// Package statedir holds hc-agent's state directory: the instance record
// that ties the directory to one server, the atomic write that every state
// file uses, and the cleaning that prepare-image does before a snapshot.
package statedir
