// Stand-in for the cAdvisor image on machines without a registry: the cAdvisor library
// (containers' CPU and memory from their cgroups, named through the Docker engine) behind
// /metrics and /healthz, taking the flags mlship passes the real image (--port,
// --housekeeping_interval, --docker_only, --store_container_labels,
// --whitelisted_container_labels), so the same compose file runs either.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/google/cadvisor/cache/memory"
	"github.com/google/cadvisor/container"
	_ "github.com/google/cadvisor/container/docker/install"
	v1 "github.com/google/cadvisor/info/v1"
	v2 "github.com/google/cadvisor/info/v2"
	"github.com/google/cadvisor/manager"
	"github.com/google/cadvisor/metrics"
	"github.com/google/cadvisor/utils/sysfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"
)

var (
	port        = flag.Int("port", 8080, "port of /metrics and /healthz")
	storeLabels = flag.Bool("store_container_labels", true, "export every container label")
	allowed     = flag.String("whitelisted_container_labels", "", "labels exported when store_container_labels is false (comma-separated)")
	// The official image's entrypoint passes it (klog's flag there); log lines go to stderr anyway.
	_ = flag.Bool("logtostderr", true, "accepted for the official image's entrypoint")
)

func main() {
	flag.Parse() // housekeeping_interval and docker_only are the library's own flags
	set := container.MetricSet{container.CpuUsageMetrics: struct{}{}, container.MemoryUsageMetrics: struct{}{}}
	allowDynamic := false
	m, err := manager.New(memory.New(2*time.Minute, nil), sysfs.NewRealSysFs(),
		manager.HousekeepingConfig{Interval: manager.HousekeepingInterval, AllowDynamic: &allowDynamic},
		set, http.DefaultClient, []string{"/"}, nil, "", 0)
	if err != nil {
		log.Fatalf("cadvisor manager: %v", err)
	}
	if err := m.Start(); err != nil {
		log.Fatalf("cadvisor start: %v", err)
	}
	labels := metrics.DefaultContainerLabels
	if !*storeLabels {
		labels = metrics.BaseContainerLabels(strings.Split(*allowed, ","))
	}
	r := prometheus.NewRegistry()
	r.MustRegister(metrics.NewPrometheusCollector(m, func(c *v1.ContainerInfo) map[string]string { return labels(c) },
		set, clock.RealClock{}, v2.RequestOptions{IdType: v2.TypeName, Count: 1, Recursive: true}))
	http.Handle("/metrics", promhttp.HandlerFor(r, promhttp.HandlerOpts{}))
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	addr := fmt.Sprintf(":%d", *port)
	log.Printf("listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
