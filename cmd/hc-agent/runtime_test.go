package main

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLimitProcs(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
	for _, tt := range []struct {
		name string
		env  string
		want int
	}{
		{name: "unset: one", env: "", want: 1},
		{name: "set: left to the runtime", env: "3", want: was},
	} {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GOMAXPROCS(was)
			limitProcs(func(k string) string {
				if k == "GOMAXPROCS" {
					return tt.env
				}
				return ""
			})
			assert.Equal(t, tt.want, runtime.GOMAXPROCS(0))
		})
	}
}
