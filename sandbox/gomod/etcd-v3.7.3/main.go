// Command etcd is etcd's own server main, built from its Go module because
// `go install` of the etcd binary is refused (its module has replace directives)
// and Debian's etcd-server (3.4.23) is older than any Kubernetes of the matrix recommends.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
