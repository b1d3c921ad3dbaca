// xds-probe: a stand-in sidecar for tests (no Envoy can be had here). It connects to istiod's
// plaintext xDS port with istio's own ADS client (istio.io/istio/pkg/adsc), subscribes to
// CDS and LDS (adsc follows with EDS and RDS and ACKs every response, as Envoy does), prints
// "READY" once both arrived, then stays connected until SIGTERM/SIGINT, so that istiod's
// /debug/syncz and /debug/config_dump?proxyID=… have a connected proxy to show.
//
// Built by test/peers/istiod.ts (installXdsProbe) in a consumer module requiring the same
// istio.io/istio version as istiod itself.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/structpb"

	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/adsc"
)

func main() {
	addr := flag.String("xds", "127.0.0.1:15010", "istiod plaintext xDS address")
	ns := flag.String("namespace", "default", "proxy namespace")
	workload := flag.String("workload", "rb-xds-probe", "pod name part of the node id")
	ip := flag.String("ip", "127.0.0.2", "IP part of the node id (never contacted)")
	timeout := flag.Duration("timeout", 30*time.Second, "time to wait for CDS and LDS")
	flag.Parse()

	meta, err := structpb.NewStruct(map[string]any{
		"NAMESPACE":    *ns,
		"CLUSTER_ID":   "Kubernetes",
		"PROXY_CONFIG": map[string]any{},
		"LABELS":       map[string]any{"app": *workload},
	})
	if err != nil {
		fail(err)
	}
	c, err := adsc.New(*addr, &adsc.ADSConfig{
		Config: adsc.Config{Namespace: *ns, Workload: *workload, IP: *ip, Meta: meta},
		InitialDiscoveryRequests: []*discovery.DiscoveryRequest{
			{TypeUrl: v3.ClusterType},
			{TypeUrl: v3.ListenerType},
		},
	})
	if err != nil {
		fail(err)
	}
	if err := c.Run(); err != nil {
		fail(err)
	}
	if _, err := c.Wait(*timeout, v3.ClusterType, v3.ListenerType); err != nil {
		fail(err)
	}
	fmt.Printf("READY node=sidecar~%s~%s.%s~%s.svc.cluster.local\n", *ip, *workload, *ns, *ns)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "xds-probe:", err)
	os.Exit(1)
}
